"""The MLflow 2.22 client, in its own virtualenv, runs the registry workflow (tests/client2x/registry_workflow.py)
against a live server; the rows it left are checked here."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from registry.models import DELETED_STAGE, ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelAlias
from tracking.models import RunTag

ROOT = Path(__file__).resolve().parents[2]
CLIENT2_PYTHON = ROOT / ".venv-client2" / "bin" / "python"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.client2x]


def test_mlflow_2x_client_registry_workflow(live_server, default_experiment, tmp_path):
    assert CLIENT2_PYTHON.exists(), "the 2.x client virtualenv is missing: run `make test` (it creates .venv-client2)"
    env = {**os.environ, "MLFLOW_TRACKING_URI": live_server.url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    result = subprocess.run(
        [str(CLIENT2_PYTHON), str(ROOT / "tests" / "client2x" / "registry_workflow.py")],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    made = json.loads(result.stdout.strip().splitlines()[-1])

    model = RegisteredModel.objects.get(name=made["name"])
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == [made["name"]]  # wf-temp-2x is gone
    versions = {v.version: v for v in ModelVersion.objects.filter(registered_model=model)}
    assert sorted(versions) == [1, 2]
    first, second = versions[1], versions[2]
    assert first.current_stage == "Staging" and first.status == "READY"
    assert first.source == first.storage_location == made["source"]
    assert made["source"] == f"mlflow-artifacts:/{made['experiment_id']}/{made['run_id']}/artifacts/model"
    assert first.run_id == made["run_id"]
    assert first.description == "first version"
    assert second.current_stage == DELETED_STAGE and second.run_id is None  # soft-deleted, number kept
    assert dict(ModelVersionTag.objects.filter(model_version=first).values_list("key", "value")) == {"validated": "yes"}
    assert list(RegisteredModelAlias.objects.filter(registered_model=model).values_list("alias", "version")) == [
        ("prod", 1)]
    assert dict(model.tags.values_list("key", "value")) == {"team": "eo"}
    history = json.loads(RunTag.objects.get(run_id=made["run_id"], key="mlflow.log-model.history").value)
    assert [entry["artifact_path"] for entry in history] == ["model"]
