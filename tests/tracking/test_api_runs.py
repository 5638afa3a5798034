"""Runs through the REST API: lifecycle, params/metrics/tags, log-batch, inputs/outputs, metric history
(spec §2.1 runs/metrics/log-batch/inputs rows, §2.2 ajax routes, §3.2 limits, §3.4 lifecycle)."""

import json
import re

import pytest

from tracking.models import Dataset, DatasetInput, LatestMetric, Metric, Param, Run, RunTag

RUNS = "/api/2.0/mlflow/runs"
METRICS = "/api/2.0/mlflow/metrics"
AJAX = "/ajax-api/2.0/mlflow"


def create_run(api, experiment_id, **fields):
    body = {"experiment_id": experiment_id, **fields}
    return api.call("CreateRun", "POST", f"{RUNS}/create", body)["run"]


def get_run(api, run_id):
    return api.call("GetRun", "GET", f"{RUNS}/get", {"run_id": run_id})["run"]


def tags_of(run):
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def params_of(run):
    return {p["key"]: p["value"] for p in run["data"].get("params", [])}


def metrics_of(run):
    return {m["key"]: m for m in run["data"].get("metrics", [])}


def fails(api, method, path, body, status=400, error_code="INVALID_PARAMETER_VALUE"):
    response = api.request(method, path, body)
    assert response.status_code == status, response.content
    assert response.json()["error_code"] == error_code, response.json()
    return response.json()["message"]


def log_metric(api, run_id, key, value, timestamp, step=None):
    body = {"run_id": run_id, "key": key, "value": value, "timestamp": timestamp}
    if step is not None:
        body["step"] = step
    api.call("LogMetric", "POST", f"{RUNS}/log-metric", body)


def log_batch(api, run_id, **lists):
    return api.request("POST", f"{RUNS}/log-batch", {"run_id": run_id, **lists})


def history(api, run_id, key, **extra):
    return api.call("GetMetricHistory", "GET", f"{METRICS}/get-history", {"run_id": run_id, "metric_key": key, **extra})


# --- create / get ------------------------------------------------------------------------------------


def test_create_run_returns_the_run(api, experiment_id):
    tags = [{"key": "mlflow.user", "value": "root"}, {"key": "mlflow.source.type", "value": "LOCAL"}]
    run = create_run(api, experiment_id, user_id="root", run_name="wf-run", start_time=1795663497731, tags=tags)
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] and re.fullmatch(r"[0-9a-f]{32}", info["run_id"])
    assert info["experiment_id"] == experiment_id
    assert info["run_name"] == "wf-run"
    assert info["user_id"] == "root"
    assert info["status"] == "RUNNING"
    assert info["start_time"] == 1795663497731
    assert info["lifecycle_stage"] == "active"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{info['run_id']}/artifacts"
    assert "end_time" not in info
    assert tags_of(run) == {"mlflow.user": "root", "mlflow.source.type": "LOCAL", "mlflow.runName": "wf-run"}
    assert run["inputs"] == {}
    assert get_run(api, info["run_id"])["info"] == info


def test_unnamed_run_gets_a_generated_name_and_tag(api, experiment_id):
    run = create_run(api, experiment_id, start_time=1)
    name = run["info"]["run_name"]
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,3}", name), name
    assert tags_of(run)["mlflow.runName"] == name


def test_run_name_from_the_tag(api, experiment_id):
    run = create_run(api, experiment_id, tags=[{"key": "mlflow.runName", "value": "from-tag"}])
    assert run["info"]["run_name"] == "from-tag"
    assert tags_of(run) == {"mlflow.runName": "from-tag"}


def test_run_name_and_tag_agreeing_is_fine(api, experiment_id):
    run = create_run(api, experiment_id, run_name="same", tags=[{"key": "mlflow.runName", "value": "same"}])
    assert run["info"]["run_name"] == "same"
    assert [t["key"] for t in run["data"]["tags"]].count("mlflow.runName") == 1


def test_run_name_and_tag_conflict(api, experiment_id):
    message = fails(api, "POST", f"{RUNS}/create", {"experiment_id": experiment_id, "run_name": "a",
                                                    "tags": [{"key": "mlflow.runName", "value": "b"}]})
    assert "mlflow.runName" in message and "run_name" in message


def test_start_time_defaults_to_now(api, experiment_id):
    import time

    before = int(time.time() * 1000)
    run = create_run(api, experiment_id)
    assert before <= run["info"]["start_time"] <= int(time.time() * 1000) + 1


def test_run_without_experiment_goes_to_default(api):
    run = api.call("CreateRun", "POST", f"{RUNS}/create", {})["run"]
    assert run["info"]["experiment_id"] == "0"
    assert run["info"]["artifact_uri"].startswith("mlflow-artifacts:/0/")


def test_run_in_missing_experiment(api):
    message = fails(api, "POST", f"{RUNS}/create", {"experiment_id": "99999"}, 404, "RESOURCE_DOES_NOT_EXIST")
    assert message == "No Experiment with id=99999 exists"


def test_run_in_deleted_experiment(api, experiment_id):
    api.call("DeleteExperiment", "POST", "/api/2.0/mlflow/experiments/delete", {"experiment_id": experiment_id})
    message = fails(api, "POST", f"{RUNS}/create", {"experiment_id": experiment_id})
    assert message == f"The experiment {experiment_id} must be in the 'active' state. Current state is deleted."


def test_runs_stop_when_a_known_experiment_is_deleted_and_resume_when_restored(api, experiment_id, run_id):
    # the server has read this experiment (run_id was created in it): its artifact location is remembered, and the
    # run's insert itself checks the experiment is still active
    api.call("DeleteExperiment", "POST", "/api/2.0/mlflow/experiments/delete", {"experiment_id": experiment_id})
    message = fails(api, "POST", f"{RUNS}/create", {"experiment_id": experiment_id, "run_name": "late"})
    assert message == f"The experiment {experiment_id} must be in the 'active' state. Current state is deleted."
    assert not Run.objects.filter(name="late").exists()
    api.call("RestoreExperiment", "POST", "/api/2.0/mlflow/experiments/restore", {"experiment_id": experiment_id})
    run = api.call("CreateRun", "POST", f"{RUNS}/create", {"experiment_id": experiment_id, "run_name": "late"})["run"]
    assert run["info"]["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{run['info']['run_id']}/artifacts"


def test_get_via_legacy_run_uuid(api, run_id):
    body = api.call("GetRun", "GET", f"{RUNS}/get", {"run_uuid": run_id})
    assert body["run"]["info"]["run_id"] == run_id
    both = api.call("GetRun", "GET", f"{RUNS}/get", {"run_uuid": run_id, "run_id": run_id})
    assert both == body


def test_get_missing_run(api):
    message = fails(api, "GET", f"{RUNS}/get", {"run_id": "0123456789abcdef0123456789abcdef"}, 404,
                    "RESOURCE_DOES_NOT_EXIST")
    assert message == "Run with id=0123456789abcdef0123456789abcdef not found"
    fails(api, "GET", f"{RUNS}/get", {}, 400)


# --- update / delete / restore --------------------------------------------------------------------------


def test_update_run(api, run_id):
    body = api.call("UpdateRun", "POST", f"{RUNS}/update",
                    {"run_uuid": run_id, "run_id": run_id, "status": "FINISHED", "end_time": 5000})
    info = body["run_info"]
    assert info["status"] == "FINISHED" and info["end_time"] == 5000
    assert info["run_name"] == "fixture-run" and info["start_time"] == 1000
    assert get_run(api, run_id)["info"] == info


def test_update_with_only_status_keeps_end_time(api, run_id):
    api.call("UpdateRun", "POST", f"{RUNS}/update", {"run_id": run_id, "status": "FINISHED", "end_time": 5000})
    info = api.call("UpdateRun", "POST", f"{RUNS}/update", {"run_id": run_id, "status": "FAILED"})["run_info"]
    assert (info["status"], info["end_time"]) == ("FAILED", 5000)
    # any transition is allowed, back to RUNNING too
    assert api.call("UpdateRun", "POST", f"{RUNS}/update", {"run_id": run_id, "status": 1})["run_info"]["status"] == "RUNNING"


def test_update_run_name_rewrites_the_tag(api, run_id):
    info = api.call("UpdateRun", "POST", f"{RUNS}/update", {"run_id": run_id, "run_name": "renamed"})["run_info"]
    assert info["run_name"] == "renamed"
    run = get_run(api, run_id)
    assert run["info"]["run_name"] == "renamed"
    assert tags_of(run)["mlflow.runName"] == "renamed"


def test_update_missing_run(api):
    fails(api, "POST", f"{RUNS}/update", {"run_id": "nope", "status": "FINISHED"}, 404, "RESOURCE_DOES_NOT_EXIST")


def test_delete_and_restore(api, run_id):
    api.call("DeleteRun", "POST", f"{RUNS}/delete", {"run_id": run_id})
    assert get_run(api, run_id)["info"]["lifecycle_stage"] == "deleted"
    api.call("RestoreRun", "POST", f"{RUNS}/restore", {"run_id": run_id})
    assert get_run(api, run_id)["info"]["lifecycle_stage"] == "active"
    fails(api, "POST", f"{RUNS}/delete", {"run_id": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST")
    fails(api, "POST", f"{RUNS}/restore", {"run_id": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST")


WRITES = [
    ("log-metric", {"key": "m", "value": 1, "timestamp": 1}),
    ("log-parameter", {"key": "p", "value": "v"}),
    ("set-tag", {"key": "t", "value": "v"}),
    ("delete-tag", {"key": "mlflow.runName"}),
    ("log-batch", {"metrics": [{"key": "m", "value": 1, "timestamp": 1}]}),
    ("update", {"status": "FINISHED"}),
    ("log-inputs", {"datasets": [{"dataset": {"name": "d", "digest": "x", "source_type": "code", "source": "{}"}}]}),
    ("outputs", {"models": [{"model_id": "m-1", "step": 0}]}),
]


@pytest.mark.parametrize("path, body", WRITES, ids=[w[0] for w in WRITES])
def test_writes_to_a_deleted_run_are_refused(api, run_id, path, body):
    api.call("DeleteRun", "POST", f"{RUNS}/delete", {"run_id": run_id})
    before = get_run(api, run_id)
    message = fails(api, "POST", f"{RUNS}/{path}", {"run_id": run_id, **body})
    assert message == f"The run {run_id} must be in the 'active' state. Current state is deleted."
    assert get_run(api, run_id) == before


# --- tags ----------------------------------------------------------------------------------------------


def test_set_tag_upserts(api, run_id):
    api.call("SetTag", "POST", f"{RUNS}/set-tag", {"run_id": run_id, "key": "team", "value": "x"})
    api.call("SetTag", "POST", f"{RUNS}/set-tag", {"run_uuid": run_id, "key": "team", "value": "y"})
    run = get_run(api, run_id)
    assert tags_of(run)["team"] == "y"
    assert [t["key"] for t in run["data"]["tags"]].count("team") == 1


def test_run_name_tag_renames_the_run(api, run_id):
    api.call("SetTag", "POST", f"{RUNS}/set-tag", {"run_id": run_id, "key": "mlflow.runName", "value": "via-tag"})
    assert get_run(api, run_id)["info"]["run_name"] == "via-tag"


def test_delete_tag(api, run_id):
    api.call("SetTag", "POST", f"{RUNS}/set-tag", {"run_id": run_id, "key": "gone", "value": "soon"})
    api.call("DeleteTag", "POST", f"{RUNS}/delete-tag", {"run_id": run_id, "key": "gone"})
    assert "gone" not in tags_of(get_run(api, run_id))
    message = fails(api, "POST", f"{RUNS}/delete-tag", {"run_id": run_id, "key": "gone"}, 404,
                    "RESOURCE_DOES_NOT_EXIST")
    assert message == f"No tag with name: gone in run with id {run_id}"


def test_empty_tag_value_is_allowed(api, run_id):
    api.call("SetTag", "POST", f"{RUNS}/set-tag", {"run_id": run_id, "key": "empty", "value": ""})
    assert tags_of(get_run(api, run_id))["empty"] == ""


# --- values the database cannot hold ---------------------------------------------------------------------


@pytest.mark.parametrize("path, body", [
    ("create", {"run_name": "n" * 300}),
    ("create", {"user_id": "u" * 300}),
    ("update", {"run_name": "n" * 300}),
    ("set-tag", {"key": "mlflow.runName", "value": "n" * 300}),
    ("log-batch", {"metrics": [{"key": "m", "value": 1, "timestamp": 1, "model_id": "m-" + "x" * 100}]}),
], ids=["create-run_name", "create-user_id", "update-run_name", "set-tag-runName", "log-batch-model_id"])
def test_values_too_long_for_a_column_are_a_400_not_a_500(api, experiment_id, run_id, path, body):
    # MLflow's session maker turns SQLAlchemy errors into BAD_REQUEST (400); a 500 is retried by the client
    ref = {"experiment_id": experiment_id} if path == "create" else {"run_id": run_id}
    response = api.request("POST", f"{RUNS}/{path}", {**ref, **body})
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")


# --- params --------------------------------------------------------------------------------------------


def test_param_is_immutable(api, run_id):
    api.call("LogParam", "POST", f"{RUNS}/log-parameter", {"run_uuid": run_id, "run_id": run_id, "key": "k", "value": "v1"})
    api.call("LogParam", "POST", f"{RUNS}/log-parameter", {"run_id": run_id, "key": "k", "value": "v1"})  # no-op
    message = fails(api, "POST", f"{RUNS}/log-parameter", {"run_id": run_id, "key": "k", "value": "v2"})
    assert message == (
        f"Changing param values is not allowed. Param with key='k' was already logged with value='v1' "
        f"for run ID='{run_id}'. Attempted logging new value 'v2'."
    )
    assert params_of(get_run(api, run_id)) == {"k": "v1"}


@pytest.mark.parametrize("how", ["single", "batch"])
def test_long_values_are_truncated(api, run_id, how):
    if how == "single":
        api.call("LogParam", "POST", f"{RUNS}/log-parameter", {"run_id": run_id, "key": "p", "value": "p" * 7000})
        api.call("SetTag", "POST", f"{RUNS}/set-tag", {"run_id": run_id, "key": "t", "value": "t" * 9000})
    else:
        response = log_batch(api, run_id, params=[{"key": "p", "value": "p" * 7000}],
                             tags=[{"key": "t", "value": "t" * 9000}])
        assert response.status_code == 200, response.content
    run = get_run(api, run_id)
    assert params_of(run)["p"] == "p" * 6000
    assert tags_of(run)["t"] == "t" * 8000
    # the truncated value is the logged one: logging the same long value again is a no-op
    api.call("LogParam", "POST", f"{RUNS}/log-parameter", {"run_id": run_id, "key": "p", "value": "p" * 7000})


@pytest.mark.parametrize("key", [
    "a!b", "semi;colon", "quote'", "x" * 251, "../x", "a/../b", "/abs", "a//b", "trailing/", ".", "",
])
@pytest.mark.parametrize("kind", ["param", "tag", "metric"])
def test_invalid_keys(api, run_id, kind, key):
    body = {
        "param": ("log-parameter", {"key": key, "value": "v"}),
        "tag": ("set-tag", {"key": key, "value": "v"}),
        "metric": ("log-metric", {"key": key, "value": 1, "timestamp": 1}),
    }[kind]
    fails(api, "POST", f"{RUNS}/{body[0]}", {"run_id": run_id, **body[1]})
    run = get_run(api, run_id)
    assert key not in params_of(run) and key not in metrics_of(run)
    assert tags_of(run).get(key) is None


@pytest.mark.parametrize("key", ["a-b_c.d e/f:g", "x" * 250, "ünïcode", "dir/sub/leaf"])
def test_valid_keys(api, run_id, key):
    api.call("LogParam", "POST", f"{RUNS}/log-parameter", {"run_id": run_id, "key": key, "value": "v"})
    assert params_of(get_run(api, run_id))[key] == "v"


# --- metrics -------------------------------------------------------------------------------------------


def test_log_metric_step_defaults_to_zero(api, run_id):
    log_metric(api, run_id, "m", 0.5, 100)
    assert metrics_of(get_run(api, run_id))["m"] == {"key": "m", "value": 0.5, "timestamp": 100, "step": 0}


def test_identical_points_are_stored_once(api, run_id):
    for _ in range(3):
        log_metric(api, run_id, "m", 1.0, 100, 1)
    log_batch(api, run_id, metrics=[{"key": "m", "value": 1.0, "timestamp": 100, "step": 1}] * 2)
    log_metric(api, run_id, "m", 2.0, 100, 1)  # another value: another point
    assert [(m["value"], m["step"]) for m in history(api, run_id, "m")["metrics"]] == [(1.0, 1), (2.0, 1)]


@pytest.mark.parametrize("points, latest", [
    # (value, timestamp, step) in logging order -> the latest point: max by (step, timestamp, value)
    ([(1.0, 10, 5), (2.0, 20, 1)], (1.0, 10, 5)),  # a higher step logged first stays latest
    ([(1.0, 10, 1), (2.0, 5, 2)], (2.0, 5, 2)),  # a higher step wins over a later timestamp
    ([(1.0, 10, 1), (2.0, 20, 1)], (2.0, 20, 1)),  # same step: later timestamp
    ([(3.0, 10, 1), (2.0, 10, 1)], (3.0, 10, 1)),  # same step and timestamp: larger value
    ([(-1.0, 10, -3), (-2.0, 10, -4)], (-1.0, 10, -3)),  # negative steps
])
def test_latest_metric(api, run_id, points, latest):
    for value, timestamp, step in points:
        log_metric(api, run_id, "m", value, timestamp, step)
    got = metrics_of(get_run(api, run_id))["m"]
    assert (got["value"], got["timestamp"], got["step"]) == latest


def test_latest_metric_within_one_batch(api, run_id):
    metrics = [{"key": "m", "value": v, "timestamp": t, "step": s} for v, t, s in [(1, 1, 9), (2, 2, 3), (3, 3, 9)]]
    assert log_batch(api, run_id, metrics=metrics).status_code == 200
    got = metrics_of(get_run(api, run_id))["m"]
    assert (got["value"], got["step"], got["timestamp"]) == (3, 9, 3)


def test_negative_timestamp_is_refused(api, run_id):
    fails(api, "POST", f"{RUNS}/log-metric", {"run_id": run_id, "key": "m", "value": 1, "timestamp": -1})


@pytest.mark.parametrize("body, missing", [
    ({"key": "m", "timestamp": 1}, "value"),
    ({"key": "m", "value": 1}, "timestamp"),
])
def test_log_metric_required_fields(api, run_id, body, missing):
    message = fails(api, "POST", f"{RUNS}/log-metric", {"run_id": run_id, **body})
    assert f"'{missing}'" in message


@pytest.mark.parametrize("lists, path", [
    ({"metrics": [{"key": "m", "value": 1}]}, "metrics[0].timestamp"),
    ({"metrics": [{"key": "m", "value": 1, "timestamp": 1}, {"value": 1, "timestamp": 1}]}, "metrics[1].key"),
    ({"params": [{"value": "v"}]}, "params[0].key"),
    ({"tags": [{"key": "", "value": "v"}]}, "tags[0].key"),
])
def test_log_batch_names_the_missing_nested_field(api, run_id, lists, path):
    message = fails(api, "POST", f"{RUNS}/log-batch", {"run_id": run_id, **lists})
    assert message == (
        f"Missing value for required parameter '{path}'. See the API docs for more information about request parameters."
    )


# --- log-batch -----------------------------------------------------------------------------------------


def test_log_batch_logs_everything(api, run_id):
    response = log_batch(
        api, run_id,
        metrics=[{"key": "m1", "value": 1.0, "timestamp": 5, "step": 2, "run_id": run_id},
                 {"key": "m2", "value": 2.0, "timestamp": 5, "step": 2}],
        params=[{"key": "p1", "value": "a"}, {"key": "p2", "value": "b"}],
        tags=[{"key": "t", "value": "x"}],
    )
    assert response.status_code == 200 and response.json() == {}
    run = get_run(api, run_id)
    assert params_of(run) == {"p1": "a", "p2": "b"}
    assert {k: m["value"] for k, m in metrics_of(run).items()} == {"m1": 1.0, "m2": 2.0}
    assert tags_of(run)["t"] == "x"


def metric(i):
    return {"key": f"m{i}", "value": i, "timestamp": 1, "step": 0}


@pytest.mark.parametrize("lists, fragment", [
    ({"metrics": [metric(i) for i in range(1001)]},
     "A batch logging request can contain at most 1000 metrics. Got 1001 metrics."),
    ({"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}, "at most 100 params. Got 101 params."),
    ({"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]}, "at most 100 tags. Got 101 tags."),
    ({"metrics": [metric(i) for i in range(1000)], "params": [{"key": "p", "value": "v"}]},
     "at most 1000 total metrics, params, and tags. Got 1001 total."),
    ({"params": [{"key": "dup", "value": "1"}, {"key": "dup", "value": "2"}]},
     "Duplicate parameter keys have been submitted"),
    ({"params": [{"key": "dup", "value": "1"}, {"key": "dup", "value": "1"}]},
     "Duplicate parameter keys have been submitted"),
])
def test_log_batch_limits(api, run_id, lists, fragment):
    message = fails(api, "POST", f"{RUNS}/log-batch", {"run_id": run_id, **lists})
    assert fragment in message
    assert not Metric.objects.filter(run_id=run_id).exists()
    assert not Param.objects.filter(run_id=run_id).exists()


def test_log_batch_at_the_limits_is_accepted(api, run_id):
    response = log_batch(api, run_id, metrics=[metric(i) for i in range(1000)])
    assert response.status_code == 200, response.content
    response = log_batch(api, run_id, params=[{"key": f"p{i}", "value": "v"} for i in range(100)],
                         tags=[{"key": f"t{i}", "value": "v"} for i in range(100)])
    assert response.status_code == 200, response.content
    assert LatestMetric.objects.filter(run_id=run_id).count() == 1000


def test_log_batch_body_over_one_megabyte(api, run_id):
    tags = [{"key": f"t{i}", "value": "x" * 11000} for i in range(100)]  # ~1.1 MB, within the counts
    body = json.dumps({"run_id": run_id, "tags": tags})
    assert len(body) > 1024 * 1024
    message = fails(api, "POST", f"{RUNS}/log-batch", body)
    assert message == (
        f"Batched logging API requests must be at most 1048576 bytes, got a request of size {len(body)}."
    )
    assert not RunTag.objects.filter(run_id=run_id, key="t0").exists()


def test_log_batch_requires_run_id(api):
    message = fails(api, "POST", f"{RUNS}/log-batch", {"metrics": [metric(1)]})
    assert "'run_id'" in message


def test_log_batch_unknown_run(api):
    fails(api, "POST", f"{RUNS}/log-batch", {"run_id": "0123456789abcdef0123456789abcdef", "metrics": [metric(1)]},
          404, "RESOURCE_DOES_NOT_EXIST")


def test_a_failing_batch_writes_nothing(api, run_id):
    api.call("LogParam", "POST", f"{RUNS}/log-parameter", {"run_id": run_id, "key": "fixed", "value": "1"})
    before = get_run(api, run_id)
    message = fails(api, "POST", f"{RUNS}/log-batch", {
        "run_id": run_id,
        "metrics": [metric(1), metric(2)],
        "params": [{"key": "new", "value": "n"}, {"key": "fixed", "value": "2"}],
        "tags": [{"key": "new-tag", "value": "t"}],
    })
    assert message.startswith("Changing param values is not allowed.")
    assert get_run(api, run_id) == before
    assert not Metric.objects.filter(run_id=run_id).exists()
    assert not LatestMetric.objects.filter(run_id=run_id).exists()


def test_a_batch_with_an_invalid_tag_writes_nothing(api, run_id):
    before = get_run(api, run_id)
    fails(api, "POST", f"{RUNS}/log-batch", {
        "run_id": run_id, "metrics": [metric(1)], "params": [{"key": "ok", "value": "v"}],
        "tags": [{"key": "bad/../key", "value": "t"}],
    })
    assert get_run(api, run_id) == before


# --- log-inputs / outputs ---------------------------------------------------------------------------------


DATASET = {
    "name": "train-df", "digest": "c2932457", "source_type": "code", "source": '{"tags": {}}',
    "schema": '{"mlflow_colspec": []}', "profile": '{"num_rows": 3}',
}


def log_inputs(api, run_id, datasets, **extra):
    return api.call("LogInputs", "POST", f"{RUNS}/log-inputs", {"run_id": run_id, "datasets": datasets, **extra})


def test_log_inputs(api, run_id):
    context = [{"key": "mlflow.data.context", "value": "training"}]
    log_inputs(api, run_id, [{"tags": context, "dataset": DATASET}])
    assert get_run(api, run_id)["inputs"] == {"dataset_inputs": [{"tags": context, "dataset": DATASET}]}


def test_dataset_without_optional_fields(api, run_id):
    bare = {"name": "bare", "digest": "d1", "source_type": "local", "source": "/tmp/x"}
    log_inputs(api, run_id, [{"dataset": bare}])
    assert get_run(api, run_id)["inputs"]["dataset_inputs"] == [{"dataset": bare}]


def test_logging_the_same_dataset_twice_stores_one_input(api, run_id):
    context = [{"key": "mlflow.data.context", "value": "training"}]
    log_inputs(api, run_id, [{"tags": context, "dataset": DATASET}])
    log_inputs(api, run_id, [{"tags": context, "dataset": DATASET}])
    assert len(get_run(api, run_id)["inputs"]["dataset_inputs"]) == 1
    assert DatasetInput.objects.filter(run_id=run_id).count() == 1


def test_datasets_are_shared_within_an_experiment(api, experiment_id, run_id):
    other = create_run(api, experiment_id)["info"]["run_id"]
    log_inputs(api, run_id, [{"dataset": DATASET}])
    log_inputs(api, other, [{"dataset": DATASET}])
    assert Dataset.objects.filter(experiment_id=experiment_id).count() == 1
    assert get_run(api, other)["inputs"]["dataset_inputs"] == [{"dataset": DATASET}]
    # another experiment gets its own copy
    second = api.call("CreateExperiment", "POST", "/api/2.0/mlflow/experiments/create", {"name": "other"})["experiment_id"]
    log_inputs(api, create_run(api, second)["info"]["run_id"], [{"dataset": DATASET}])
    assert Dataset.objects.filter(name="train-df").count() == 2


@pytest.mark.parametrize("dataset, tags", [
    ({**DATASET, "digest": "d" * 37}, []),
    ({**DATASET, "name": "n" * 501}, []),
    (DATASET, [{"key": "k" * 256, "value": "v"}]),
    (DATASET, [{"key": "k", "value": "v" * 501}]),
    ({k: v for k, v in DATASET.items() if k != "source"}, []),
])
def test_invalid_inputs(api, run_id, dataset, tags):
    fails(api, "POST", f"{RUNS}/log-inputs", {"run_id": run_id, "datasets": [{"tags": tags, "dataset": dataset}]})
    assert get_run(api, run_id)["inputs"] == {}


def test_model_inputs_and_outputs(api, run_id):
    log_inputs(api, run_id, [], models=[{"model_id": "m-in"}])
    api.call("LogOutputs", "POST", f"{RUNS}/outputs", {"run_id": run_id, "models": [{"model_id": "m-out", "step": 0}]})
    api.call("LogOutputs", "POST", f"{RUNS}/outputs", {"run_id": run_id, "models": [{"model_id": "m-out", "step": 3}]})
    run = get_run(api, run_id)
    assert run["inputs"] == {"model_inputs": [{"model_id": "m-in"}]}
    assert run["outputs"] == {"model_outputs": [{"model_id": "m-out", "step": 0}, {"model_id": "m-out", "step": 3}]}


# --- metric history ------------------------------------------------------------------------------------


def test_history_is_ordered_by_timestamp_step_value(api, run_id):
    for value, timestamp, step in [(3, 30, 0), (1, 10, 2), (2, 10, 1), (0, 10, 1)]:
        log_metric(api, run_id, "h", value, timestamp, step)
    points = history(api, run_id, "h")["metrics"]
    assert [(p["timestamp"], p["step"], p["value"]) for p in points] == [(10, 1, 0), (10, 1, 2), (10, 2, 1), (30, 0, 3)]
    assert all(set(p) == {"key", "value", "timestamp", "step"} for p in points)


def test_history_pagination(api, run_id):
    log_batch(api, run_id, metrics=[{"key": "h", "value": i, "timestamp": i, "step": i} for i in range(5)])
    seen, token = [], None
    for expected_size in (2, 2, 1):
        page = history(api, run_id, "h", max_results=2, **({"page_token": token} if token else {}))
        assert len(page["metrics"]) == expected_size
        seen += [p["step"] for p in page["metrics"]]
        token = page.get("next_page_token")
    assert token is None
    assert seen == [0, 1, 2, 3, 4]
    assert len(history(api, run_id, "h", max_results=25000)["metrics"]) == 5


def test_history_of_unknown_run_or_key_is_empty(api, run_id):
    assert history(api, run_id, "nothing") == {}
    assert history(api, "0123456789abcdef0123456789abcdef", "h") == {}


@pytest.mark.parametrize("max_results", [0, -5])
def test_history_max_results_must_be_positive(api, run_id, max_results):
    fails(api, "GET", f"{METRICS}/get-history", {"run_id": run_id, "metric_key": "h", "max_results": max_results})


def test_history_via_legacy_run_uuid(api, run_id):
    log_metric(api, run_id, "h", 1, 1)
    assert history(api, run_id, "h") == api.call(
        "GetMetricHistory", "GET", f"{METRICS}/get-history", {"run_uuid": run_id, "metric_key": "h"})


# --- get-history-bulk-interval ----------------------------------------------------------------------------


def bulk_interval(api, run_ids, key="h", **extra):
    return api.call("GetMetricHistoryBulkInterval", "GET", f"{METRICS}/get-history-bulk-interval",
                    {"run_ids": run_ids, "metric_key": key, **extra})


def test_bulk_interval_returns_everything_when_small(api, experiment_id, run_id):
    other = create_run(api, experiment_id)["info"]["run_id"]
    log_batch(api, run_id, metrics=[{"key": "h", "value": i, "timestamp": i, "step": i} for i in range(5)])
    log_batch(api, other, metrics=[{"key": "h", "value": i, "timestamp": i, "step": i} for i in range(3)])
    points = bulk_interval(api, [run_id, other])["metrics"]
    assert [(p["run_id"], p["step"]) for p in points] == [(run_id, s) for s in range(5)] + [(other, s) for s in range(3)]
    assert set(points[0]) == {"key", "value", "timestamp", "step", "run_id"}


def test_bulk_interval_sampling_keeps_first_and_last_steps(api, run_id):
    log_batch(api, run_id, metrics=[{"key": "h", "value": i, "timestamp": i, "step": i} for i in range(200)])
    steps = [p["step"] for p in bulk_interval(api, [run_id], max_results=10)["metrics"]]
    assert steps[0] == 0 and steps[-1] == 199
    assert steps == sorted(set(steps))
    assert 10 <= len(steps) <= 12


def test_bulk_interval_is_bounded_when_many_values_share_a_step(api, run_id):
    # log_metric without a step puts every value at step 0; MLflow (>= 3.17) samples rows, not steps,
    # so a UI chart request never returns more than max_results points per run
    log_batch(api, run_id, metrics=[{"key": "h", "value": i, "timestamp": i, "step": 0} for i in range(1000)])
    points = bulk_interval(api, [run_id], max_results=10)["metrics"]
    assert len(points) <= 10
    assert points[0]["timestamp"] == 0 and points[-1]["timestamp"] == 999


def test_bulk_interval_step_range(api, run_id):
    log_batch(api, run_id, metrics=[{"key": "h", "value": i, "timestamp": i, "step": i} for i in range(50)])
    steps = [p["step"] for p in bulk_interval(api, [run_id], start_step=10, end_step=20)["metrics"]]
    assert steps == list(range(10, 21))
    sampled = [p["step"] for p in bulk_interval(api, [run_id], start_step=10, end_step=40, max_results=5)["metrics"]]
    assert sampled[0] == 10 and sampled[-1] == 40 and len(sampled) <= 7
    assert all(10 <= s <= 40 for s in sampled)


@pytest.mark.parametrize("extra, fragment", [
    ({"start_step": 5}, "If either start step or end step are specified, both must be specified."),
    ({"end_step": 5}, "If either start step or end step are specified, both must be specified."),
    ({"start_step": 9, "end_step": 3}, "end_step must be greater than start_step. Found start_step=9 and end_step=3."),
    ({"max_results": 0}, "max_results must be between 1 and 2500."),
    ({"max_results": 2501}, "max_results must be between 1 and 2500."),
])
def test_bulk_interval_validation(api, run_id, extra, fragment):
    message = fails(api, "GET", f"{METRICS}/get-history-bulk-interval",
                    {"run_ids": [run_id], "metric_key": "h", **extra})
    assert fragment in message


def test_bulk_interval_run_id_limits(api, run_id):
    message = fails(api, "GET", f"{METRICS}/get-history-bulk-interval",
                    {"run_ids": [f"r{i}" for i in range(101)], "metric_key": "h"})
    assert "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received 101 run_ids." in message
    message = fails(api, "GET", f"{METRICS}/get-history-bulk-interval", {"metric_key": "h"})
    assert "'run_ids'" in message
    assert bulk_interval(api, [run_id], max_results=2500) == {}


# --- ajax: get-history-bulk, search-datasets ----------------------------------------------------------------


def test_ajax_history_bulk(api, experiment_id):
    first, second = sorted(create_run(api, experiment_id)["info"]["run_id"] for _ in range(2))
    for run_id, points in ((second, [(2, 20, 0), (1, 10, 1), (0, 10, 0)]), (first, [(5, 50, 0), (4, 40, 0)])):
        for value, timestamp, step in points:
            log_metric(api, run_id, "loss", value, timestamp, step)
    response = api.request("GET", f"{AJAX}/metrics/get-history-bulk", {"run_id": [second, first], "metric_key": "loss"})
    assert response.status_code == 200, response.content
    got = [(m["run_id"], m["timestamp"], m["step"], m["value"]) for m in response.json()["metrics"]]
    assert got == [(first, 40, 0, 4), (first, 50, 0, 5), (second, 10, 0, 0), (second, 10, 1, 1), (second, 20, 0, 2)]
    assert set(response.json()["metrics"][0]) == {"key", "value", "timestamp", "step", "run_id"}


def test_ajax_history_bulk_validation_and_route(api, run_id):
    fails(api, "GET", f"{AJAX}/metrics/get-history-bulk", {"metric_key": "loss"})
    fails(api, "GET", f"{AJAX}/metrics/get-history-bulk", {"run_id": [run_id]})
    message = fails(api, "GET", f"{AJAX}/metrics/get-history-bulk",
                    {"run_id": [f"r{i}" for i in range(101)], "metric_key": "loss"})
    assert "cannot specify more than 100 run_ids" in message
    fails(api, "GET", "/api/2.0/mlflow/metrics/get-history-bulk", {"run_id": [run_id], "metric_key": "loss"},
          404, "ENDPOINT_NOT_FOUND")


def test_ajax_history_bulk_max_results(api, run_id):
    log_batch(api, run_id, metrics=[{"key": "h", "value": i, "timestamp": i, "step": i} for i in range(10)])
    response = api.request("GET", f"{AJAX}/metrics/get-history-bulk", {"run_id": [run_id], "metric_key": "h",
                                                                        "max_results": 4})
    assert [m["step"] for m in response.json()["metrics"]] == [0, 1, 2, 3]


def search_datasets(api, experiment_ids):
    return api.call("SearchDatasets", "POST", f"{AJAX}/experiments/search-datasets", {"experiment_ids": experiment_ids})


def test_ajax_search_datasets(api, experiment_id, run_id):
    other_run = create_run(api, experiment_id)["info"]["run_id"]
    train = [{"key": "mlflow.data.context", "value": "training"}]
    evaluation = [{"key": "mlflow.data.context", "value": "eval"}]
    log_inputs(api, run_id, [{"tags": train, "dataset": DATASET}])
    log_inputs(api, other_run, [{"tags": train, "dataset": DATASET}])  # same dataset, same context: one summary
    log_inputs(api, other_run, [{"tags": evaluation, "dataset": {**DATASET, "name": "eval-df", "digest": "e1"}}])
    log_inputs(api, other_run, [{"dataset": {**DATASET, "name": "raw", "digest": "r1"}}])
    summaries = search_datasets(api, [experiment_id])["dataset_summaries"]
    got = sorted((s["experiment_id"], s["name"], s["digest"], s.get("context")) for s in summaries)
    assert got == [
        (experiment_id, "eval-df", "e1", "eval"), (experiment_id, "raw", "r1", None),
        (experiment_id, "train-df", "c2932457", "training"),
    ]
    assert search_datasets(api, ["0"]) == {}


def test_ajax_search_datasets_validation(api):
    message = fails(api, "POST", f"{AJAX}/experiments/search-datasets", {"experiment_ids": [str(i) for i in range(21)]})
    assert "cannot specify more than 20 experiment_ids" in message
    fails(api, "POST", f"{AJAX}/experiments/search-datasets", {"experiment_ids": []})
    assert search_datasets(api, [str(i) for i in range(20)]) == {}
