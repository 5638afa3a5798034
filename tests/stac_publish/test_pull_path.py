"""The pull path beside the push (spec sharinghub.md §9, stac-publication.md §7): a client acting as SharingHub
(plain requests, no mlflow User-Agent, `Authorization: Bearer <GitLab token>`) lists a project's registered models
and fetches the MLmodel of the first latest version through /<project>/tracking/, and gets exactly what a member
of the project may see."""

import pytest
import requests
import yaml

pytestmark = pytest.mark.django_db(transaction=True)

PROJECT, OTHER = "team/wine", "other/beer"


def as_sharinghub(token: str | None) -> dict:
    """SharingHub's own HTTP client: a Bearer token and no mlflow User-Agent."""
    headers = {"User-Agent": "python-httpx/0.27", "Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def call(base: str, method: str, path: str, token: str, **kwargs) -> dict:
    response = requests.request(method, f"{base}{path}", headers=as_sharinghub(token), timeout=30, **kwargs)
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return response.json() if response.content else {}


def register_2x_style(base: str, token: str, model_dir, *, experiment: str, model: str) -> dict:
    """What a 2.x client does in the project view: run, model files uploaded by PUT, version with a run-relative source."""
    experiment_id = call(base, "POST", "/api/2.0/mlflow/experiments/create", token, json={"name": experiment})["experiment_id"]
    run_id = call(base, "POST", "/api/2.0/mlflow/runs/create", token,
                  json={"experiment_id": experiment_id, "start_time": 1})["run"]["info"]["run_id"]
    for file in sorted(model_dir.iterdir()):
        response = requests.put(f"{base}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/model/{file.name}",
                                data=file.read_bytes(), headers=as_sharinghub(token), timeout=30)
        assert response.status_code == 200, response.text
    call(base, "POST", "/api/2.0/mlflow/registered-models/create", token, json={"name": model})
    source = f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/model"
    version = call(base, "POST", "/api/2.0/mlflow/model-versions/create", token,
                   json={"name": model, "source": source, "run_id": run_id})["model_version"]
    return {"run_id": run_id, "source": source, "version": version["version"]}


@pytest.fixture
def world(live_server, sharinghub, sklearn_model_dir, default_experiment):
    sharinghub.add_project(PROJECT, 42)
    sharinghub.add_project(OTHER, 7)
    developer = sharinghub.token(project=PROJECT, level=3)
    beer_developer = sharinghub.token(project=OTHER, level=3)
    wine = register_2x_style(f"{live_server.url}/{PROJECT}/tracking", developer, sklearn_model_dir,
                             experiment="wine (42)", model="wine-model (42)")
    register_2x_style(f"{live_server.url}/{OTHER}/tracking", beer_developer, sklearn_model_dir,
                      experiment="beer (7)", model="beer-model (7)")
    mlmodel = (sklearn_model_dir / "MLmodel").read_bytes()
    model_path = yaml.safe_load(mlmodel)["flavors"]["python_function"]["model_path"]
    return {"url": live_server.url, "wine": wine, "mlmodel": mlmodel, "model_file": (sklearn_model_dir / model_path).read_bytes()}


def pull(world, project: str, token: str | None):
    """SharingHub's steps 2-5 (§9.1): search without parameters, then the MLmodel of each model's latest_versions[0]."""
    tracking_uri = f"{world['url']}/{project}/tracking/"
    listing = requests.get(f"{tracking_uri}api/2.0/mlflow/registered-models/search", headers=as_sharinghub(token), timeout=30)
    return tracking_uri, listing


def test_a_project_member_pulls_the_models_and_their_mlmodel(world, sharinghub):
    reporter = sharinghub.token(project=PROJECT, level=2)
    tracking_uri, listing = pull(world, PROJECT, reporter)
    assert listing.status_code == 200, listing.text
    models = listing.json()["registered_models"]
    assert [m["name"] for m in models] == ["wine-model (42)"]
    latest = models[0]["latest_versions"][0]
    assert latest["source"] == world["wine"]["source"] and latest["run_id"] == world["wine"]["run_id"]
    artifact_path = latest["source"].split("/artifacts/", 1)[1]
    mlmodel = requests.get(f"{tracking_uri}get-artifact", params={"path": f"{artifact_path}/MLmodel",
                                                                  "run_uuid": latest["run_id"]},
                           headers=as_sharinghub(reporter), timeout=30)
    assert mlmodel.status_code == 200, mlmodel.text
    assert mlmodel.content == world["mlmodel"]
    model_path = yaml.safe_load(mlmodel.text)["flavors"]["python_function"]["model_path"]
    model_file = requests.get(f"{tracking_uri}get-artifact", params={"path": f"{artifact_path}/{model_path}",
                                                                     "run_id": latest["run_id"]},
                              headers=as_sharinghub(reporter), timeout=30)
    assert model_file.status_code == 200 and model_file.content == world["model_file"]


def test_a_member_of_another_project_sees_nothing(world, sharinghub):
    outsider = sharinghub.token(project=OTHER, level=4)
    tracking_uri, listing = pull(world, PROJECT, outsider)
    assert listing.status_code == 200, listing.text
    assert listing.json().get("registered_models", []) == []
    mlmodel = requests.get(f"{tracking_uri}get-artifact", params={"path": "model/MLmodel", "run_uuid": world["wine"]["run_id"]},
                           headers=as_sharinghub(outsider), timeout=30)
    assert mlmodel.status_code == 403
    # ... while in its own project it sees its own model only
    _, own = pull(world, OTHER, outsider)
    assert [m["name"] for m in own.json()["registered_models"]] == ["beer-model (7)"]


def test_without_a_token_sharinghub_gets_the_html_401(world, sharinghub):
    tracking_uri, listing = pull(world, PROJECT, None)
    assert listing.status_code == 401
    assert listing.headers["Content-Type"].startswith("text/html")
    assert "MLFLOW_TRACKING_TOKEN" not in listing.text  # the text answer is for the MLflow client only
    mlmodel = requests.get(f"{tracking_uri}get-artifact", params={"path": "model/MLmodel", "run_uuid": world["wine"]["run_id"]},
                           headers=as_sharinghub(None), timeout=30)
    assert mlmodel.status_code == 401 and mlmodel.headers["Content-Type"].startswith("text/html")


def test_an_unknown_token_gets_the_html_401_too(world, sharinghub):
    _, listing = pull(world, PROJECT, "not-a-gitlab-token")
    assert listing.status_code == 401 and listing.headers["Content-Type"].startswith("text/html"), listing.text[:300]
