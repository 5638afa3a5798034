"""End to end into a real transactional STAC API: stac-fastapi-pgstac on the local PostgreSQL with PostGIS.

Opt-in (marker `pgstac`), skipped unless MLFLOW_SH_PGSTAC=1. The stack comes from tests/stac_publish/pgstac_stack.sh:
either already running (PGSTAC_URL=http://127.0.0.1:8082, collection ai-model), or started here on a free port
and stopped afterwards (needs `bash tests/stac_publish/pgstac_stack.sh install` once).

    MLFLOW_SH_PGSTAC=1 .venv/bin/python -m pytest -m pgstac tests/stac_publish
"""

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from registry.models import ModelVersion
from stac_publish.models import PublicationJob
from tests.stac_publish.conftest import MODEL, PROJECT, assert_no_problem_jobs, drain, item_id_of

pytestmark = [
    pytest.mark.pgstac,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(os.environ.get("MLFLOW_SH_PGSTAC") != "1", reason="the real STAC API stack: set MLFLOW_SH_PGSTAC=1"),
]

STACK = Path(__file__).with_name("pgstac_stack.sh")
COLLECTION = "ai-model"


@pytest.fixture(scope="session")
def pgstac_url(tmp_path_factory):
    if os.environ.get("PGSTAC_URL"):
        yield os.environ["PGSTAC_URL"].rstrip("/")
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PGSTAC_PORT": str(port), "PGSTAC_DB": "mlflow_sh_pgstac_test",
           "PGSTAC_RUN": str(tmp_path_factory.mktemp("pgstac-run"))}
    started = subprocess.run(["bash", str(STACK), "start"], env=env, capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, f"{STACK} start failed (run `{STACK} install` first):\n{started.stdout}\n{started.stderr}"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(STACK), "stop"], env=env, capture_output=True, timeout=60)


@pytest.fixture
def pgstac(pgstac_url, settings):
    settings.STAC_PUBLISH_URL = pgstac_url
    settings.STAC_PUBLISH_COLLECTION = COLLECTION
    settings.STAC_PUBLISH_AUTH = "none"
    settings.STAC_PUBLIC_BASE_URL = "https://sh.example.com/mlflow"
    settings.STAC_PUBLISH_TIMEOUT = 10.0
    settings.STAC_PUBLISH_MAX_BACKOFF = 0.05
    for item_id in list_ids(pgstac_url):  # a clean collection
        requests.delete(f"{pgstac_url}/collections/{COLLECTION}/items/{item_id}", timeout=10)
    return pgstac_url


def list_ids(url: str) -> list[str]:
    response = requests.get(f"{url}/collections/{COLLECTION}/items", params={"limit": 1000}, timeout=10)
    assert response.status_code == 200, response.text
    return [feature["id"] for feature in response.json()["features"]]


def get_item(url: str, item_id: str) -> dict | None:
    response = requests.get(f"{url}/collections/{COLLECTION}/items/{item_id}", timeout=10)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def real_client(live_server, default_experiment, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    tracking_uri = f"{live_server.url}/{PROJECT}/tracking/"
    mlflow.set_tracking_uri(tracking_uri)
    yield mlflow.MlflowClient(tracking_uri)
    if mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def log_and_register(client) -> str:
    """The real 3.x client: a model logged with a signature, registered under a model that has mlm:tasks."""
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"alcohol": [12.8, 13.2, 11.1, 14.0], "pH": [3.1, 3.4, 3.2, 3.0]})
    client.create_registered_model(MODEL, tags={"mlm:tasks": json.dumps(["classification"])})
    mlflow.set_experiment("wine (42)")
    with mlflow.start_run():
        mlflow.log_param("max_iter", 200)
        info = mlflow.sklearn.log_model(LogisticRegression(max_iter=200).fit(frame, [0, 1, 0, 1]), name="model",
                                        input_example=frame.head(2), pip_requirements=["scikit-learn"])
    return mlflow.register_model(info.model_uri, MODEL).version


def register_update_delete(client, url: str) -> None:
    version = log_and_register(client)
    item_id = item_id_of(MODEL, int(version))
    drain(timeout=60)
    assert_no_problem_jobs()
    item = get_item(url, item_id)
    assert item is not None and list_ids(url) == [item_id]
    assert item["properties"]["mlm:tasks"] == ["classification"]
    assert item["properties"]["mlm:framework"] == "scikit-learn"
    assert item["properties"]["sharinghub:path"] == PROJECT
    assert any(link["rel"] == "mlflow:model" and link.get("mlflow:uri") == f"models:/{MODEL}/{version}"
               for link in item["links"])
    assert any("mlm:model" in asset.get("roles", []) for asset in item["assets"].values())

    client.update_model_version(MODEL, version, description="Updated through the real client.")
    client.set_registered_model_alias(MODEL, "champion", version)
    drain(timeout=60)
    assert_no_problem_jobs()
    item = get_item(url, item_id)
    assert item["properties"]["description"] == "Updated through the real client."
    assert item["properties"]["mlflow:aliases"] == ["champion"]
    assert list_ids(url) == [item_id]

    client.delete_model_version(MODEL, version)
    drain(timeout=60)
    assert_no_problem_jobs()
    assert get_item(url, item_id) is None and list_ids(url) == []


def test_a_version_appears_changes_and_disappears_in_pgstac(pgstac, real_client, settings):
    """What the server builds, into stac-fastapi-pgstac (which needs a footprint: STAC_PUBLISH_BBOX gives one),
    and the Transaction fall-backs against the real API: POST 409 -> PUT, PUT 404 -> POST, DELETE 404 is done."""
    from mlflow_sh.env import bbox_polygon

    settings.STAC_PUBLISH_BBOX = [-180.0, -90.0, 180.0, 90.0]
    settings.STAC_PUBLISH_GEOMETRY = bbox_polygon(settings.STAC_PUBLISH_BBOX)
    register_update_delete(real_client, pgstac)

    # The fall-backs: a second version; its item is deleted behind the publisher's back, then re-created.
    version = log_and_register_again(real_client)
    item_id = item_id_of(MODEL, int(version))
    drain(timeout=60)
    assert_no_problem_jobs()
    assert requests.delete(f"{pgstac}/collections/{COLLECTION}/items/{item_id}", timeout=10).status_code in {200, 204}
    real_client.update_model_version(MODEL, version, description="PUT 404 -> POST")
    drain(timeout=60)
    assert_no_problem_jobs()
    assert get_item(pgstac, item_id)["properties"]["description"] == "PUT 404 -> POST"
    version_pk = ModelVersion.objects.get(registered_model__name=MODEL, version=int(version)).pk
    PublicationJob.objects.create(model_version_id=version_pk, item_id=item_id, action=PublicationJob.CREATE,
                                  next_attempt_at=timezone.now())  # a create again, as after a lost answer: POST 409 -> PUT
    drain(timeout=60)
    assert_no_problem_jobs()
    assert list_ids(pgstac) == [item_id]
    requests.delete(f"{pgstac}/collections/{COLLECTION}/items/{item_id}", timeout=10)
    real_client.delete_model_version(MODEL, version)  # DELETE 404 -> done
    drain(timeout=60)
    assert_no_problem_jobs()
    assert list_ids(pgstac) == []


def log_and_register_again(client) -> str:
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"alcohol": [12.8, 13.2, 11.1, 14.0], "pH": [3.1, 3.4, 3.2, 3.0]})
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(LogisticRegression(max_iter=100).fit(frame, [1, 0, 1, 0]), name="model",
                                        input_example=frame.head(2), pip_requirements=["scikit-learn"])
    return mlflow.register_model(info.model_uri, MODEL).version
