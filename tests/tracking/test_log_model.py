"""runs/log-model, as the 2.x client's log_model sends it: the MLmodel dict joins a run tag."""

import json

import pytest

MODEL = {"artifact_path": "model", "flavors": {"python_function": {}}, "utc_time_created": "2026-11-26 00:00:00.000000"}


def log_model(api, run_id, model_json, status=200):
    return api.call("LogModel", "POST", "/api/2.0/mlflow/runs/log-model", {"run_id": run_id, "model_json": model_json}, status=status)


def history(api, run_id):
    run = api.call("GetRun", "GET", f"/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    return json.loads(tags["mlflow.log-model.history"])


def test_each_logged_model_is_appended_to_the_history_tag(api, run_id):
    log_model(api, run_id, json.dumps({**MODEL, "run_id": run_id}))
    log_model(api, run_id, json.dumps({**MODEL, "artifact_path": "model2", "run_id": run_id}))
    assert [m["artifact_path"] for m in history(api, run_id)] == ["model", "model2"]


@pytest.mark.parametrize("model_json, message", [
    ("not json", "is not a valid JSON"),
    ("[1, 2]", "is not a JSON object"),
    (json.dumps({"artifact_path": "m"}), "missing mandatory fields"),
])
def test_malformed_model_json_is_refused(api, run_id, model_json, message):
    body = log_model(api, run_id, model_json, status=400)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE" and message in body["message"]


def test_the_history_stays_valid_json_when_it_outgrows_the_tag(api, run_id):
    big = {**MODEL, "run_id": run_id, "signature": "x" * 3000}
    for _ in range(4):
        log_model(api, run_id, json.dumps(big))
    kept = history(api, run_id)
    assert 1 <= len(kept) < 4  # the oldest entries made room


def test_a_deleted_run_takes_no_model(api, run_id):
    api.call("DeleteRun", "POST", "/api/2.0/mlflow/runs/delete", {"run_id": run_id})
    body = log_model(api, run_id, json.dumps({**MODEL, "run_id": run_id}), status=400)
    assert "must be in the 'active' state" in body["message"]
