"""Fixtures of the publication tests: the STAC API double, publication settings, and real models to publish."""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

PUBLISH_TOKEN = "publish-token"
PROJECT = "group/wine-model"
MODEL = "wine-model (42)"
TASKS_TAG = {"key": "mlm:tasks", "value": json.dumps(["classification"])}


@pytest.fixture(scope="session")
def stac_server():
    from tests.doubles.stac import StacDouble

    double = StacDouble().start()
    yield double
    double.stop()


@pytest.fixture
def stac(stac_server, settings):
    """Publication on, into a clean double that checks the service token; short timeouts and back-off."""
    stac_server.reset(token=PUBLISH_TOKEN)
    settings.STAC_PUBLISH_URL = stac_server.url
    settings.STAC_PUBLISH_COLLECTION = "ai-model"
    settings.STAC_PUBLIC_BASE_URL = "https://sh.example.com/mlflow"
    settings.STAC_PUBLISH_AUTH = "bearer"
    settings.STAC_PUBLISH_TOKEN = PUBLISH_TOKEN
    settings.STAC_PUBLISH_TIMEOUT = 1.0
    settings.STAC_PUBLISH_MAX_BACKOFF = 0.05
    yield stac_server
    stac_server.reset_faults()
    stac_server.wait_idle()


@pytest.fixture(scope="session")
def sklearn_model_dir(tmp_path_factory) -> Path:
    """A real scikit-learn model saved by MLflow, with a signature inferred from an input example."""
    import mlflow.sklearn
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"alcohol": [12.8, 13.2, 11.1, 14.0, 12.0, 13.9], "pH": [3.1, 3.4, 3.2, 3.0, 3.5, 3.3]})
    model = LogisticRegression(max_iter=200).fit(frame, [0, 1, 0, 1, 0, 1])
    path = tmp_path_factory.mktemp("sklearn") / "model"
    # Pinned requirements: MLflow would otherwise load the model in a subprocess to infer them (seconds).
    mlflow.sklearn.save_model(model, path, input_example=frame.head(2), pip_requirements=["scikit-learn"])
    assert "signature" in (path / "MLmodel").read_text()
    return path


@dataclass
class Published:
    name: str
    version: int
    run_id: str
    experiment_id: str
    source: str

    @property
    def pk(self) -> int:
        from registry.models import ModelVersion

        return ModelVersion.objects.get(registered_model__name=self.name, version=self.version).pk


class Registry:
    """Registry writes as clients send them, in a project view (open mode records the view's project)."""

    def __init__(self, api, model_dir: Path, project: str = PROJECT):
        self.api, self.model_dir, self.project = api, model_dir, project

    def url(self, rest: str) -> str:
        return f"/{self.project}/tracking/api/2.0/{rest}"

    def call(self, rpc, method, rest, body=None, status=200):
        return self.api.call(rpc, method, self.url(rest), body, status=status)

    def run_with_model(self, experiment_name: str = "wine (42)") -> tuple[str, str, str]:
        """(experiment id, run id, source) of a run whose artifacts/model holds the real model, uploaded
        file by file as the 2.x client does (PUT mlflow-artifacts)."""
        from tracking.models import Experiment

        existing = Experiment.objects.filter(name=experiment_name).values_list("pk", flat=True).first()
        experiment_id = str(existing) if existing is not None else self.call(
            "CreateExperiment", "POST", "mlflow/experiments/create", {"name": experiment_name})["experiment_id"]
        run = self.call("CreateRun", "POST", "mlflow/runs/create",
                        {"experiment_id": experiment_id, "start_time": int(time.time() * 1000)})["run"]["info"]
        run_id = run["run_id"]
        self.call("LogBatch", "POST", "mlflow/runs/log-batch",
                  {"run_id": run_id, "params": [{"key": "max_iter", "value": "200"}, {"key": "C", "value": "1.0"}]})
        for file in sorted(self.model_dir.iterdir()):
            response = self.api.request(
                "PUT", self.url(f"mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/model/{file.name}"),
                file.read_bytes(), content_type="application/octet-stream")
            assert response.status_code == 200, response.content
        return experiment_id, run_id, f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/model"

    def create_model(self, name: str = MODEL, tags=(TASKS_TAG,), **fields) -> None:
        self.call("CreateRegisteredModel", "POST", "mlflow/registered-models/create",
                  {"name": name, "tags": list(tags), **fields})

    def create_version(self, name: str = MODEL, **fields) -> Published:
        experiment_id, run_id, source = self.run_with_model()
        body = {"name": name, "source": source, "run_id": run_id, **fields}
        version = self.call("CreateModelVersion", "POST", "mlflow/model-versions/create", body)["model_version"]
        return Published(name, int(version["version"]), run_id, experiment_id, source)

    def register(self, name: str = MODEL, versions: int = 1, **fields) -> list[Published]:
        self.create_model(name, **fields)
        return [self.create_version(name) for _ in range(versions)]


@pytest.fixture
def registry(api, sklearn_model_dir):
    return Registry(api, sklearn_model_dir)


# --- the outbox and the STAC API ----------------------------------------------------------------------


def item_id_of(name: str, version: int) -> str:
    from stac_publish.eligibility import item_id

    return item_id(name, version)


def drain(timeout: float = 15.0, pause: float = 0.01) -> int:
    """Runs the publisher, time passing, until no job is pending; returns the number of attempts."""
    from stac_publish import publisher
    from stac_publish.models import PublicationJob

    deadline, attempts = time.monotonic() + timeout, 0
    while PublicationJob.objects.filter(state=PublicationJob.PENDING).exists():
        assert time.monotonic() < deadline, list(
            PublicationJob.objects.filter(state=PublicationJob.PENDING).values("item_id", "action", "attempts", "last_error"))
        attempts += publisher.run_once()
        time.sleep(pause)
    return attempts


def assert_no_problem_jobs() -> None:
    from stac_publish.models import PublicationJob

    problems = list(PublicationJob.objects.exclude(state=PublicationJob.DONE).values("item_id", "action", "state", "last_error"))
    assert problems == [], problems


def read_back(double, item_id: str | None = None):
    """Through the STAC API itself: one item (None when 404), or the ids of the whole collection's listing."""
    headers = {"Authorization": f"Bearer {PUBLISH_TOKEN}"}
    base = f"{double.url}/collections/ai-model/items"
    if item_id is None:
        response = requests.get(base, headers=headers, timeout=5)
        assert response.status_code == 200, response.text
        return [feature["id"] for feature in response.json()["features"]]
    response = requests.get(f"{base}/{item_id}", headers=headers, timeout=5)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.json()


def assert_catalogue(double, expected: dict[str, Published]) -> dict[str, dict]:
    """The collection holds exactly these items, each once, each in the state the builder gives it now."""
    from stac_publish import items

    listed = read_back(double)
    assert sorted(listed) == sorted(set(listed)), f"an item is listed twice: {listed}"
    assert set(listed) == set(expected), listed
    found = {}
    for item_id, published in expected.items():
        item = read_back(double, item_id)
        assert item["id"] == item_id and item["collection"] == "ai-model"
        assert item == {**items.build_item(published.pk, item_id), "collection": "ai-model"}
        uris = [link.get("mlflow:uri") for link in item["links"] if link["rel"] == "mlflow:model"]
        assert uris == [f"models:/{published.name}/{published.version}"], item["links"]
        found[item_id] = item
    return found
