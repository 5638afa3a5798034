"""The MLflow 2.22 client, in its own virtualenv, runs the tracking workflow against a live server."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from tracking.models import LatestMetric, Run

ROOT = Path(__file__).resolve().parents[2]
CLIENT2_PYTHON = ROOT / ".venv-client2" / "bin" / "python"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.client2x]


def test_mlflow_2x_client_workflow(live_server, default_experiment):
    assert CLIENT2_PYTHON.exists(), "the 2.x client virtualenv is missing: run `make test` (it creates .venv-client2)"
    env = {**os.environ, "MLFLOW_TRACKING_URI": live_server.url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    result = subprocess.run(
        [str(CLIENT2_PYTHON), str(ROOT / "tests" / "client2x" / "workflow.py")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    logged = json.loads(result.stdout.strip().splitlines()[-1])
    run = Run.objects.get(pk=logged["run_id"])
    assert run.status == "FINISHED" and run.name == "wf-run-2x"
    assert str(run.experiment_id) == logged["experiment_id"]
    assert LatestMetric.objects.get(run=run, key="hist").value == 4.0
    assert Run.objects.get(pk=logged["child_id"]).lifecycle_stage == "active"
