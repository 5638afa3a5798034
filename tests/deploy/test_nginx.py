"""Behind the deployment guide's ingress (tests/nginx.py: a real nginx that strips /mlflow and sends
X-Script-Name), in SharingHub mode: the real MLflow client works at /mlflow/<project>/tracking/, a 200 MB
artifact goes up and down whole with flat memory, and every URL the server emits carries /mlflow: redirects,
login redirect_uri (with the scheme TLS arrived on), and the links of published STAC items."""

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
import yaml

from tests.nginx import ingress  # noqa: F401 (a fixture)
from tests.stac_publish.conftest import drain, read_back, sklearn_model_dir, stac, stac_server  # noqa: F401 (fixtures)
from tests.stac_publish.test_pull_path import register_2x_style
from tests.tracking.test_artifacts import MiB
from tests.tracking.test_artifacts_large import PeakRss, file_chunks, make_file, sha256_of

pytestmark = pytest.mark.django_db(transaction=True)

PROJECT = "team/wine"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}


@pytest.fixture
def project(sharinghub):
    sharinghub.add_project(PROJECT, 42)
    return PROJECT


@pytest.fixture
def tracking(ingress, monkeypatch):  # noqa: F811 (the fixture imported above)
    """The real 3.x client pointed at the project view through the ingress; yields the tracking URI."""
    import mlflow
    from mlflow.utils import server_info

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    tracking_uri = f"{ingress.url}/{PROJECT}/tracking/"
    mlflow.set_tracking_uri(tracking_uri)
    yield tracking_uri
    if mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    with server_info._SERVER_INFO_CACHE_LOCK:  # cached per host: the next test's settings may differ
        server_info._SERVER_INFO_CACHE.clear()


class NginxPeakRss(PeakRss):
    """PeakRss of nginx's master and workers instead of this process."""

    def __init__(self, ingress):  # noqa: F811
        self.pids = ingress.pids()
        super().__init__()

    def _rss(self) -> int:
        total = 0
        for pid in self.pids:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return total


def test_the_client_works_through_the_prefix_with_a_200mb_artifact(ingress, tracking, sharinghub, project,  # noqa: F811
                                                                   monkeypatch, tmp_path):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", sharinghub.token(project=PROJECT, level=3))
    size = 200 * MiB
    source = tmp_path / "src" / "weights.bin"
    source.parent.mkdir()
    digest = make_file(source, size)
    # A name the ingress decodes before its rewrite and encodes again on the way to the server.
    odd = tmp_path / "src" / "notes v1+final 100%.txt"  # ("#" is not quoted by the client itself)
    odd.write_text("through the rewrite")

    experiment = mlflow.set_experiment("wine (42)")
    with PeakRss() as memory, NginxPeakRss(ingress) as nginx_memory:
        with mlflow.start_run() as run:
            mlflow.log_param("alpha", "0.5")
            mlflow.log_metric("rmse", 0.25, step=2)
            mlflow.log_artifact(str(source), "model")
            mlflow.log_artifact(str(odd), "model")
        downloaded = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="model",
                                                              dst_path=str(tmp_path / "dl")))
    print(f"\n200 MiB through nginx: peak RSS growth {memory.growth / MiB:.0f} MiB here (client and server), "
          f"{nginx_memory.growth / MiB:.1f} MiB in nginx")

    assert experiment.tags["project"] == PROJECT
    client = mlflow.MlflowClient()
    assert client.get_run(run.info.run_id).data.metrics == {"rmse": 0.25}
    assert sorted((f.path, f.file_size) for f in client.list_artifacts(run.info.run_id, "model")) == [
        (f"model/{odd.name}", odd.stat().st_size), ("model/weights.bin", size)]
    assert (downloaded / odd.name).read_text() == "through the rewrite"
    assert sha256_of(file_chunks(downloaded / "weights.bin")) == digest
    # The bytes went through nginx, prefix and all (the ingress spools an upload to disk, then streams it on).
    upload = f'"PUT /mlflow/{PROJECT}/tracking/api/2.0/mlflow-artifacts/artifacts/{experiment.experiment_id}/'
    assert any(line.startswith(f"127.0.0.1 {upload}") and 'weights.bin HTTP/1.1" 200' in line
               and int(line.split("req=")[1].split()[0]) > size  # the request's length: headers and body
               for line in ingress.access_log().splitlines()), ingress.access_log()[-2000:]
    assert memory.growth < 48 * MiB, f"the server buffered the body: RSS grew {memory.growth / MiB:.0f} MiB"
    assert nginx_memory.growth < 16 * MiB, f"nginx held the body in memory: RSS grew {nginx_memory.growth / MiB:.0f} MiB"


def redirect_uri_of(response) -> str:
    assert response.status_code == 302, (response.status_code, response.text[:300])
    return parse_qs(urlsplit(response.headers["Location"]).query)["redirect_uri"][0]


def get(url: str, **kwargs) -> requests.Response:
    """A browser's GET, redirects not followed."""
    return requests.get(url, headers=BROWSER, allow_redirects=False, timeout=10, **kwargs)


def test_redirects_and_login_links_carry_the_prefix(ingress, sharinghub, project, settings):  # noqa: F811
    # SharingHub's login comes back to the external URL of the view, prefix included, in the scheme TLS used.
    login = get(f"{ingress.url}/{PROJECT}/tracking/auth/login")
    assert login.headers["Location"].startswith(f"{sharinghub.url}/api/auth/login?")
    assert redirect_uri_of(login) == f"{ingress.url}/{PROJECT}/tracking/"
    assert redirect_uri_of(get(f"{ingress.url}/auth/login")) == f"{ingress.url}/"
    assert redirect_uri_of(get(f"{ingress.url}/auth/login?project={PROJECT}")) == f"{ingress.url}/{PROJECT}/tracking/"
    tls_login = get(f"{ingress.https_url}/{PROJECT}/tracking/auth/login", verify=str(ingress.certificate))
    assert redirect_uri_of(tls_login) == f"{ingress.https_url}/{PROJECT}/tracking/"

    # An anonymous browser: the 401 page links to the login under the prefix...
    search = f"{ingress.url}/{PROJECT}/tracking/ajax-api/2.0/mlflow/experiments/search?max_results=10"
    page = get(search)
    assert page.status_code == 401 and f'href="/mlflow/{PROJECT}/tracking/auth/login"' in page.text
    # ...or, with LOGIN_AUTO_REDIRECT, is sent there, and from there to SharingHub.
    settings.LOGIN_AUTO_REDIRECT = True
    redirected = get(search)
    assert redirected.status_code == 302 and redirected.headers["Location"] == f"/mlflow/{PROJECT}/tracking/auth/login"
    assert redirect_uri_of(get(urljoin(ingress.origin, redirected.headers["Location"]))) == f"{ingress.url}/{PROJECT}/tracking/"
    logout = get(f"{ingress.url}/{PROJECT}/tracking/auth/logout")
    assert logout.status_code == 302 and logout.headers["Location"] == f"/mlflow/{PROJECT}/tracking/auth/"
    assert get(urljoin(ingress.origin, logout.headers["Location"])).status_code == 200
    settings.LOGIN_AUTO_REDIRECT = False
    logout = get(f"{ingress.url}/{PROJECT}/tracking/auth/logout")
    assert logout.status_code == 302 and logout.headers["Location"] == f"{ingress.url}/{PROJECT}/tracking/"

    # The project view without its slash is sent to it (the UI's relative links need it), query kept.
    bare = get(f"{ingress.url}/{PROJECT}/tracking?o=1")
    assert bare.status_code == 302 and bare.headers["Location"] == f"/mlflow/{PROJECT}/tracking/?o=1"
    # Django's own URLs (reverse()) take the prefix too: the admin's login redirect.
    admin = get(f"{ingress.url}/admin/")
    assert admin.status_code == 302 and admin.headers["Location"] == "/mlflow/admin/login/?next=/mlflow/admin/"


def test_published_stac_items_link_through_the_prefix(ingress, tracking, sharinghub, project, stac, settings,  # noqa: F811
                                                      sklearn_model_dir, monkeypatch):  # noqa: F811
    """The publisher runs outside any request, so its links come from STAC_PUBLIC_BASE_URL (the guide's value:
    the ingress URL with /mlflow): set to this ingress, every href of the items must answer through it."""
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from stac_publish.eligibility import item_id

    settings.STAC_PUBLIC_BASE_URL = ingress.url
    token = sharinghub.token(project=PROJECT, level=3)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    tasks = {"mlm:tasks": json.dumps(["classification"])}

    # MLflow 3: a logged model (source models:/m-...), served by /model-versions/get-artifact.
    client = mlflow.MlflowClient()
    client.create_registered_model("wine-model (42)", tags=tasks)
    frame = pd.DataFrame({"alcohol": [12.8, 13.2, 11.1, 14.0], "pH": [3.1, 3.4, 3.2, 3.0]})
    mlflow.set_experiment("wine (42)")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(LogisticRegression(max_iter=200).fit(frame, [0, 1, 0, 1]), name="model",
                                        input_example=frame.head(2), pip_requirements=["scikit-learn"])
    version3 = mlflow.register_model(info.model_uri, "wine-model (42)").version
    # MLflow 2: files under a run (source .../artifacts/model), served by /get-artifact, as SharingHub links them.
    base = f"{ingress.url}/{PROJECT}/tracking"
    version2 = register_2x_style(base, token, sklearn_model_dir, experiment="wine-2x (42)", model="wine-2x (42)")
    client.set_registered_model_tag("wine-2x (42)", "mlm:tasks", tasks["mlm:tasks"])

    drain(timeout=60)
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "python-httpx/0.27"}  # as SharingHub fetches
    for model, version in (("wine-model (42)", version3), ("wine-2x (42)", version2["version"])):
        item = read_back(stac, item_id(model, int(version)))
        assert item is not None, f"{model} v{version} was not published"
        mlflow_links = {link["rel"]: link["href"] for link in item["links"] if link["rel"].startswith("mlflow:")}
        assert mlflow_links["mlflow:tracking-uri"] == f"{base}/"
        assert mlflow_links["mlflow:model"].startswith(f"{base}/#/models/")
        for name, asset in item["assets"].items():
            assert asset["href"].startswith(f"{base}/"), (name, asset["href"])
            response = requests.get(asset["href"], headers=headers, timeout=30)
            assert response.status_code == 200, (name, asset["href"], response.status_code, response.text[:300])
            if name == "mlmodel":
                assert "sklearn" in yaml.safe_load(response.content)["flavors"]
            else:  # the model file itself
                assert "mlm:model" in asset["roles"] and len(response.content) == asset["file:size"]
    # The tracking URI is where SharingHub pulls from: the registry answers there, through the ingress.
    listing = requests.get(f"{base}/api/2.0/mlflow/registered-models/search", headers=headers, timeout=30)
    assert sorted(m["name"] for m in listing.json()["registered_models"]) == ["wine-2x (42)", "wine-model (42)"]
    assert (sklearn_model_dir / "MLmodel").read_bytes() == requests.get(
        f"{base}/get-artifact", params={"path": "model/MLmodel", "run_uuid": version2["run_id"]}, headers=headers,
        timeout=30).content
