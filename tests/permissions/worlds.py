"""Shared helpers of the permission tests: a small world of two projects and untagged data, built through
the API itself (so that the project column and tag are set as a client would get them), module-scoped
settings for SharingHub mode, and per-request rollback."""

import contextlib
import json
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction
from django.test import override_settings

from tests.conftest import Api

WINE, BEER = "team/wine", "other/beer"
PROJECT_IDS = {WINE: 42, BEER: 7}
API = "/api/2.0/mlflow"


@dataclass
class Side:
    """The resources of one project (or of no project: project None)."""

    project: str | None
    experiment_id: str
    experiment_name: str
    run_id: str
    logged_model_id: str
    model_name: str
    version: str = "1"
    alias: str = "champion"

    @property
    def suffix(self) -> str:
        return f" ({PROJECT_IDS[self.project]})" if self.project else ""


def view_prefix(project: str | None) -> str:
    return f"/{project}/tracking" if project else ""


def ok(response, what: str = "") -> dict:
    assert response.status_code == 200, (what, response.status_code, response.content[:500])
    return response.json() if response.get("Content-Type", "").startswith("application/json") else {}


def build_side(api: Api, project: str | None, experiment_name: str, model_name: str, *, headers=None) -> Side:
    """An experiment (experiment 0 when experiment_name is "Default") with a tag, a run with a metric, a param,
    a tag, a dataset input, an artifact and an MLmodel file, a logged model with a tag, and a registered model
    with a tag and a version made from the run, with a tag and the alias "champion"."""
    headers = headers or {}
    base = view_prefix(project)

    def post(path, body, method="POST"):
        return ok(api.request(method, f"{base}{API}/{path}", body, **headers), path)

    if experiment_name == "Default":
        experiment_id = "0"
    else:
        experiment_id = post("experiments/create", {"name": experiment_name})["experiment_id"]
        post("experiments/set-experiment-tag", {"experiment_id": experiment_id, "key": "k", "value": "v"})
    run_id = post("runs/create", {"experiment_id": experiment_id, "start_time": 1000, "run_name": "r"})["run"]["info"]["run_id"]
    post("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": 1.5, "timestamp": 1000, "step": 0}],
                            "params": [{"key": "p", "value": "1"}], "tags": [{"key": "t", "value": "v"}]})
    post("runs/log-inputs", {"run_id": run_id, "datasets": [{"tags": [], "dataset": {
        "name": "d", "digest": "abc", "source_type": "code", "source": "{}"}}]})
    logged = post("logged-models", {"experiment_id": experiment_id, "name": "lm", "source_run_id": run_id})
    logged_model_id = logged["model"]["info"]["model_id"]
    post(f"logged-models/{logged_model_id}/tags", {"tags": [{"key": "a", "value": "b"}]}, method="PATCH")
    artifacts = f"{base}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts"
    for name, content in (("file.txt", b"hello"), ("model/MLmodel", b"flavors: {}\n")):
        ok(api.request("PUT", f"{artifacts}/{name}", content, content_type="application/octet-stream", **headers), name)
    post("registered-models/create", {"name": model_name})
    post("registered-models/set-tag", {"name": model_name, "key": "k", "value": "v"})
    post("model-versions/create", {"name": model_name, "source": f"runs:/{run_id}/model", "run_id": run_id})
    post("model-versions/set-tag", {"name": model_name, "version": "1", "key": "k", "value": "v"})
    post("registered-models/alias", {"name": model_name, "alias": "champion", "version": "1"})
    return Side(project, experiment_id, experiment_name, run_id, logged_model_id, model_name)


@dataclass
class World:
    wine: Side
    beer: Side
    loose: Side  # untagged: experiment 0 and a registered model created in the global view

    def side(self, target: str) -> Side:
        return {"wine": self.wine, "beer": self.beer, "loose": self.loose}[target]


def build_world(api: Api) -> World:
    """In open mode (no checks), as data would exist on a server: two projects and untagged leftovers."""
    with override_settings(PERMISSION_MODE="open"):
        return World(
            wine=build_side(api, WINE, "wine (42)", "wine-model (42)"),
            beer=build_side(api, BEER, "beer (7)", "beer-model (7)"),
            loose=build_side(api, None, "Default", "loose-model"),
        )


@contextlib.contextmanager
def sharinghub_mode(double, **extra):
    """SharingHub mode against the double, for as long as the block lasts (usable at module scope)."""
    with override_settings(PERMISSION_MODE="sharinghub", SHARINGHUB_URL=double.url, GITLAB_URL="",
                           SHARINGHUB_AUTH_DEFAULT_TOKEN=False, LOGIN_AUTO_REDIRECT=False, **extra):
        cache.clear()
        try:
            yield double
        finally:
            cache.clear()


@contextlib.contextmanager
def rolled_back():
    """Whatever happens inside is undone (the request's own transaction is a savepoint of this one)."""
    with transaction.atomic():
        try:
            yield
        finally:
            transaction.set_rollback(True)


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def body_json(response) -> dict:
    try:
        return json.loads(response.content or b"{}")
    except ValueError:
        return {}
