"""Wire conventions (spec §1, §3.1): how requests are decoded and how responses and errors are encoded."""

import json

import pytest

API_DOCS_HINT = "See the API docs for more information about request parameters."
MAX_DOUBLE = 1.7976931348623157e308


def create_experiment(api, name):
    return api.call("CreateExperiment", "POST", "/api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"]


def create_run(api, experiment_id, **fields):
    body = {"experiment_id": experiment_id, "start_time": 1000, **fields}
    return api.call("CreateRun", "POST", "/api/2.0/mlflow/runs/create", body)["run"]["info"]["run_id"]


def get_run(api, run_id):
    return api.call("GetRun", "GET", "/api/2.0/mlflow/runs/get", {"run_id": run_id})["run"]


def error(response, status, error_code="INVALID_PARAMETER_VALUE"):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == error_code, body
    return body["message"]


# --- request decoding: GET ------------------------------------------------------------------------


def test_get_repeated_query_keys_make_a_list(api, experiment_id):
    runs = [create_run(api, experiment_id, run_name=f"r{i}") for i in range(3)]
    for i, run_id in enumerate(runs):
        body = {"run_id": run_id, "key": "loss", "value": i, "timestamp": 10, "step": 0}
        api.call("LogMetric", "POST", "/api/2.0/mlflow/runs/log-metric", body)
    # ?run_ids=a&run_ids=b (the Django test client encodes a list as repeated keys)
    body = api.call("GetMetricHistoryBulkInterval", "GET", "/api/2.0/mlflow/metrics/get-history-bulk-interval",
                    {"run_ids": runs[:2], "metric_key": "loss"})
    assert sorted(m["run_id"] for m in body["metrics"]) == sorted(runs[:2])
    raw = api.request("GET", f"/api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids={runs[0]}&run_ids={runs[2]}"
                             "&metric_key=loss")
    assert sorted(m["run_id"] for m in raw.json()["metrics"]) == sorted([runs[0], runs[2]])


def test_get_a_repeated_scalar_key_uses_the_first_value(api, experiment_id):
    # Flask's request.args.get() (used for non-repeated fields) returns the first value
    response = api.request("GET", f"/api/2.0/mlflow/experiments/get?experiment_id={experiment_id}&experiment_id=99999")
    assert response.status_code == 200, response.content
    assert response.json()["experiment"]["experiment_id"] == experiment_id


def test_get_ignores_unknown_query_keys(api, experiment_id):
    body = api.call("GetExperiment", "GET", "/api/2.0/mlflow/experiments/get",
                    {"experiment_id": experiment_id, "bogus": "1"})
    assert body["experiment"]["experiment_id"] == experiment_id


# --- request decoding: JSON bodies ----------------------------------------------------------------


def test_unknown_fields_are_ignored_at_any_depth(api):
    body = {
        "name": "unknown-fields", "bogus": 1, "nested_bogus": {"a": [1, 2]},
        "tags": [{"key": "k", "value": "v", "extra": True}],
    }
    experiment_id = api.call("CreateExperiment", "POST", "/api/2.0/mlflow/experiments/create", body)["experiment_id"]
    experiment = api.call("GetExperiment", "GET", "/api/2.0/mlflow/experiments/get", {"experiment_id": experiment_id})
    assert experiment["experiment"]["tags"] == [{"key": "k", "value": "v"}]


def test_int64_accepted_as_json_string_and_returned_as_number(api, experiment_id):
    run_id = api.call("CreateRun", "POST", "/api/2.0/mlflow/runs/create",
                      {"experiment_id": experiment_id, "start_time": "12345"})["run"]["info"]["run_id"]
    metric = {"key": "m", "value": 1.5, "timestamp": "777", "step": "4"}
    api.call("LogBatch", "POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": run_id, "metrics": [metric]})
    run = get_run(api, run_id)
    assert run["info"]["start_time"] == 12345
    assert run["data"]["metrics"] == [{"key": "m", "value": 1.5, "timestamp": 777, "step": 4}]


@pytest.mark.parametrize("status", ["FINISHED", 3, "3"])
def test_enums_by_name_or_number(api, run_id, status):
    body = api.call("UpdateRun", "POST", "/api/2.0/mlflow/runs/update", {"run_id": run_id, "status": status})
    assert body["run_info"]["status"] == "FINISHED"


@pytest.mark.parametrize("view_type, expected", [
    (1, "alive"), ("ACTIVE_ONLY", "alive"), (2, "dead"), ("DELETED_ONLY", "dead"), (3, "both"), ("ALL", "both"),
])
def test_view_type_enum_by_name_or_number(api, experiment_id, view_type, expected):
    alive = create_run(api, experiment_id, run_name="alive")
    dead = create_run(api, experiment_id, run_name="dead")
    api.call("DeleteRun", "POST", "/api/2.0/mlflow/runs/delete", {"run_id": dead})
    body = api.call("SearchRuns", "POST", "/api/2.0/mlflow/runs/search",
                    {"experiment_ids": [experiment_id], "run_view_type": view_type})
    found = {r["info"]["run_id"] for r in body["runs"]}
    assert found == {"alive": {alive}, "dead": {dead}, "both": {alive, dead}}[expected]


@pytest.mark.parametrize("status", ["DONE", 9, True])
def test_unknown_enum_value_is_a_400(api, run_id, status):
    response = api.request("POST", "/api/2.0/mlflow/runs/update", {"run_id": run_id, "status": status})
    error(response, 400)


@pytest.mark.parametrize("sent, stored", [
    ("NaN", "NaN"),
    ("Infinity", MAX_DOUBLE),
    ("-Infinity", -MAX_DOUBLE),
    ("2.5", 2.5),
    (1e308, 1e308),
])
def test_doubles_accept_nan_and_infinities(api, run_id, sent, stored):
    api.call("LogMetric", "POST", "/api/2.0/mlflow/runs/log-metric",
             {"run_id": run_id, "key": "x", "value": sent, "timestamp": 1})
    assert get_run(api, run_id)["data"]["metrics"][0]["value"] == stored
    history = api.call("GetMetricHistory", "GET", "/api/2.0/mlflow/metrics/get-history",
                       {"run_id": run_id, "metric_key": "x"})
    assert history["metrics"][0]["value"] == stored


def test_nan_is_written_as_the_string_nan_in_raw_json(api, run_id):
    api.call("LogMetric", "POST", "/api/2.0/mlflow/runs/log-metric",
             {"run_id": run_id, "key": "x", "value": "NaN", "timestamp": 1})
    raw = api.request("GET", "/api/2.0/mlflow/runs/get", {"run_id": run_id}).content.decode()
    assert '"NaN"' in raw and "Infinity" not in raw  # strict JSON: no bare NaN token


# --- Content-Type and body framing ----------------------------------------------------------------


def test_post_without_content_type_is_refused(api):
    response = api.request("POST", "/api/2.0/mlflow/experiments/create", {"name": "no-ct"}, content_type="")
    assert error(response, 400) == "Bad Request. Content-Type header is missing."


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"])
def test_post_with_another_content_type_is_refused(api, content_type):
    response = api.request("POST", "/api/2.0/mlflow/experiments/create", {"name": "bad-ct"}, content_type=content_type)
    assert error(response, 400) == "Bad Request. Content-Type must be one of ['application/json']."


def test_content_type_parameters_are_allowed(api):
    response = api.request("POST", "/api/2.0/mlflow/experiments/create", {"name": "charset"},
                           content_type="application/json; charset=utf-8")
    assert response.status_code == 200, response.content
    assert response.json()["experiment_id"]


def test_double_encoded_json_body_is_decoded_again(api):
    response = api.request("POST", "/api/2.0/mlflow/experiments/create", json.dumps(json.dumps({"name": "double"})))
    assert response.status_code == 200, response.content
    body = api.call("GetExperimentByName", "GET", "/api/2.0/mlflow/experiments/get-by-name",
                    {"experiment_name": "double"})
    assert body["experiment"]["experiment_id"] == response.json()["experiment_id"]


def test_empty_body_means_an_empty_message(api):
    # no fields at all: experiments/search answers with its defaults (ACTIVE_ONLY), Default included
    response = api.request("POST", "/api/2.0/mlflow/experiments/search", "", CONTENT_TYPE="application/json")
    assert response.status_code == 200, response.content
    assert "0" in [e["experiment_id"] for e in response.json()["experiments"]]
    # and a required field is then reported missing, not a JSON error
    response = api.request("POST", "/api/2.0/mlflow/experiments/create", "", CONTENT_TYPE="application/json")
    assert error(response, 400) == f"Missing value for required parameter 'name'. {API_DOCS_HINT}"


@pytest.mark.parametrize("raw", ["{", "{'name': 'x'}", "not json", "[1, 2", '{"name": "x",}'])
def test_malformed_json_is_a_400(api, raw):
    response = api.request("POST", "/api/2.0/mlflow/experiments/create", raw)
    error(response, 400)


# --- required fields and types ---------------------------------------------------------------------


@pytest.mark.parametrize("method, path, body, field", [
    ("GET", "/api/2.0/mlflow/experiments/get", None, "experiment_id"),
    ("GET", "/api/2.0/mlflow/experiments/get", {"experiment_id": ""}, "experiment_id"),
    ("GET", "/api/2.0/mlflow/experiments/get-by-name", None, "experiment_name"),
    ("POST", "/api/2.0/mlflow/experiments/create", {}, "name"),
    ("POST", "/api/2.0/mlflow/experiments/create", {"name": ""}, "name"),
    ("POST", "/api/2.0/mlflow/experiments/delete", {}, "experiment_id"),
    ("POST", "/api/2.0/mlflow/runs/delete", {}, "run_id"),
    ("POST", "/api/2.0/mlflow/runs/log-metric", {"run_id": "abc", "value": 1, "timestamp": 1}, "key"),
    ("GET", "/api/2.0/mlflow/metrics/get-history", {"run_id": "abc"}, "metric_key"),
])
def test_missing_required_field_message(api, method, path, body, field):
    response = api.request(method, path, body)
    assert error(response, 400) == f"Missing value for required parameter '{field}'. {API_DOCS_HINT}"


@pytest.mark.parametrize("body, shown, type_name", [
    ({"run_id": 31}, "31", "int"),
    ({"run_id": 31.5}, "31.5", "float"),
])
def test_wrong_type_message(api, body, shown, type_name):
    response = api.request("POST", "/api/2.0/mlflow/runs/update", body)
    message = error(response, 400)
    assert message.startswith(f"Invalid value {shown} for parameter 'run_id' supplied:")
    assert f"Hint: Value was of type '{type_name}'." in message
    assert message.endswith(API_DOCS_HINT)


@pytest.mark.parametrize("body", [
    {"name": ["a"]},
    {"name": {"a": 1}},
    {"name": "ok", "tags": {"key": "k"}},
    {"name": "ok", "tags": ["k"]},
])
def test_wrong_shapes_are_a_400(api, body):
    error(api.request("POST", "/api/2.0/mlflow/experiments/create", body), 400)


# --- error bodies and status codes ------------------------------------------------------------------


def test_error_body_has_code_message_sqlstate_and_class(api):
    response = api.request("GET", "/api/2.0/mlflow/experiments/get", {"experiment_id": "99999"})
    assert response.status_code == 404
    assert response.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST", "message": "No Experiment with id=99999 exists",
        "sqlstate": "KAM00", "error_class": "RESOURCE_NOT_FOUND",
    }
    response = api.request("GET", "/api/2.0/mlflow/experiments/get")
    assert response.json()["sqlstate"] == "KAM00"
    assert response.json()["error_class"] == "INVALID_PARAMETER_VALUE"


def test_resource_already_exists_is_a_400(api):
    create_experiment(api, "dup")
    response = api.request("POST", "/api/2.0/mlflow/experiments/create", {"name": "dup"})
    error(response, 400, "RESOURCE_ALREADY_EXISTS")
    assert response.json()["error_class"] == "RESOURCE_ALREADY_EXISTS"


@pytest.mark.parametrize("path", [
    "/api/2.0/mlflow/does-not-exist",
    "/ajax-api/2.0/mlflow/does-not-exist",
    "/api/2.0/mlflow/runs/get/extra",
    "/api/2.0/mlflow/runs/get/",  # no trailing slash in MLflow paths
    "/api/9.0/mlflow/runs/get",
])
def test_unknown_api_path_is_a_json_404(api, path):
    error(api.request("GET", path), 404, "ENDPOINT_NOT_FOUND")


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/2.0/mlflow/experiments/create"),
    ("GET", "/api/2.0/mlflow/runs/log-batch"),
    ("POST", "/api/2.0/mlflow/runs/get"),
    ("PUT", "/api/2.0/mlflow/runs/update"),
    ("DELETE", "/api/2.0/mlflow/runs/delete"),
    ("PATCH", "/ajax-api/2.0/mlflow/experiments/get"),
])
def test_wrong_method_is_a_json_405(api, method, path):
    response = api.request(method, path, {"run_id": "x"} if method != "GET" else None)
    assert response.status_code == 405, response.content
    assert response["Content-Type"].startswith("application/json")
    assert set(response.json()) >= {"error_code", "message"}


# --- plain routes --------------------------------------------------------------------------------------


def test_health(api):
    response = api.request("GET", "/health")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"OK"


def test_version(api):
    response = api.request("GET", "/version")
    assert response.status_code == 200
    assert response.content.decode() == "3.18.0"


SERVER_INFO_BOOLEANS = [
    "workspaces_enabled", "trace_archival_enabled", "multipart_uploads_enabled", "multipart_downloads_enabled",
    "artifact_serving_enabled", "presigned_upload_run_id_supported", "presigned_upload_model_id_supported",
    "model_artifact_presigned_downloads_supported", "artifacts_presigned_only",
]


@pytest.mark.parametrize("prefix", ["/api/3.0", "/ajax-api/3.0"])
def test_server_info(api, prefix):
    response = api.request("GET", f"{prefix}/mlflow/server-info")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    info = response.json()
    assert info["store_type"] == "SqlStore"
    for key in SERVER_INFO_BOOLEANS:
        assert isinstance(info[key], bool), key
    assert info["workspaces_enabled"] is False
    assert isinstance(info["features_enabled"], dict)
    assert isinstance(info["tracking_auth"], str)


# --- every RPC at both prefixes ----------------------------------------------------------------------

# The tracking RPCs of spec §2.1 (experiments, runs, metrics, log-batch, inputs/outputs, search runs).
TRACKING_RPCS = [
    ("GET", "mlflow/experiments/get-by-name"),
    ("POST", "mlflow/experiments/create"),
    ("POST", "mlflow/experiments/search"),
    ("GET", "mlflow/experiments/search"),
    ("GET", "mlflow/experiments/get"),
    ("POST", "mlflow/experiments/delete"),
    ("POST", "mlflow/experiments/restore"),
    ("POST", "mlflow/experiments/update"),
    ("POST", "mlflow/runs/create"),
    ("POST", "mlflow/runs/update"),
    ("POST", "mlflow/runs/delete"),
    ("POST", "mlflow/runs/restore"),
    ("GET", "mlflow/runs/get"),
    ("POST", "mlflow/runs/log-metric"),
    ("POST", "mlflow/runs/log-parameter"),
    ("POST", "mlflow/experiments/set-experiment-tag"),
    ("POST", "mlflow/experiments/delete-experiment-tag"),
    ("POST", "mlflow/runs/set-tag"),
    ("POST", "mlflow/runs/delete-tag"),
    ("GET", "mlflow/metrics/get-history"),
    ("GET", "mlflow/metrics/get-history-bulk-interval"),
    ("POST", "mlflow/runs/log-batch"),
    ("POST", "mlflow/runs/log-model"),
    ("POST", "mlflow/runs/log-inputs"),
    ("POST", "mlflow/runs/outputs"),
    ("POST", "mlflow/runs/search"),
]


@pytest.mark.parametrize("prefix", ["/api/2.0", "/ajax-api/2.0"])
@pytest.mark.parametrize("method, path", TRACKING_RPCS, ids=[f"{m} {p}" for m, p in TRACKING_RPCS])
def test_every_rpc_is_served_at_both_prefixes(api, prefix, method, path):
    response = api.request(method, f"{prefix}/{path}", {} if method == "POST" else None)
    assert response.status_code not in (404, 405) or response.json()["error_code"] not in (
        "ENDPOINT_NOT_FOUND", "BAD_REQUEST"
    ), response.content
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("method, path", [
    ("GET", "mlflow/metrics/get-history-bulk"),
    ("POST", "mlflow/experiments/search-datasets"),
])
def test_ajax_only_routes(api, method, path):
    response = api.request(method, f"/ajax-api/2.0/{path}", {} if method == "POST" else None)
    assert response.json().get("error_code") != "ENDPOINT_NOT_FOUND"
    error(api.request(method, f"/api/2.0/{path}", {} if method == "POST" else None), 404, "ENDPOINT_NOT_FOUND")


# --- response encoding ---------------------------------------------------------------------------------


def test_unset_and_empty_fields_are_omitted(api, experiment_id):
    run_id = create_run(api, experiment_id, run_name="bare")
    run = get_run(api, run_id)
    assert "end_time" not in run["info"]
    assert set(run["data"]) == {"tags"}  # no metrics, no params
    assert run["inputs"] == {}
    assert run["outputs"] == {}
    experiment = api.call("GetExperiment", "GET", "/api/2.0/mlflow/experiments/get", {"experiment_id": experiment_id})
    assert "tags" not in experiment["experiment"]


def test_empty_search_results_are_an_empty_object(api, experiment_id):
    response = api.request("POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]})
    assert response.status_code == 200
    assert response.json() == {}
    response = api.request("POST", "/api/2.0/mlflow/experiments/search",
                           {"max_results": 10, "filter": "name = 'nothing-here'"})
    assert response.json() == {}
    response = api.request("GET", "/api/2.0/mlflow/metrics/get-history", {"run_id": "nope", "metric_key": "m"})
    assert response.json() == {}


def test_write_rpcs_answer_an_empty_object(api, run_id):
    response = api.request("POST", "/api/2.0/mlflow/runs/set-tag", {"run_id": run_id, "key": "k", "value": "v"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {}


def test_responses_use_snake_case_and_numbers_for_int64(api, experiment_id):
    run_id = create_run(api, experiment_id, run_name="snake")
    raw = api.request("GET", "/api/2.0/mlflow/runs/get", {"run_id": run_id}).json()["run"]["info"]
    assert {"run_id", "run_uuid", "run_name", "experiment_id", "start_time", "artifact_uri", "lifecycle_stage"} <= set(raw)
    assert isinstance(raw["start_time"], int)
    assert isinstance(raw["experiment_id"], str)
    assert raw["status"] == "RUNNING"


# --- ParseDict details --------------------------------------------------------------------------------


def test_lower_camel_case_field_names_are_accepted(api, experiment_id):
    # protobuf's ParseDict accepts a field's JSON name (lowerCamelCase) as well as its proto name
    body = {"experimentId": experiment_id, "runName": "camel", "startTime": "42"}
    run = api.call("CreateRun", "POST", "/api/2.0/mlflow/runs/create", body)["run"]
    assert run["info"]["experiment_id"] == experiment_id
    assert run["info"]["run_name"] == "camel"
    assert run["info"]["start_time"] == 42


def test_a_field_spelled_both_ways_is_refused(api, experiment_id):
    body = {"experiment_id": experiment_id, "experimentId": "0"}
    message = error(api.request("POST", "/api/2.0/mlflow/runs/create", body), 400)
    assert message == "Request specifies both 'experiment_id' and 'experimentId'; provide only one of them."


@pytest.mark.parametrize("path, body", [
    ("runs/create", {"start_time": 2**63}),
    ("runs/create", {"start_time": str(-(2**63) - 1)}),
    ("runs/log-metric", {"key": "m", "value": 1, "timestamp": 2**64}),
    ("runs/log-metric", {"key": "m", "value": 1, "timestamp": 1, "step": 2**63}),
    ("runs/update", {"end_time": 2**63}),
])
def test_int64_out_of_range_is_a_400(api, run_id, experiment_id, path, body):
    ref = {"experiment_id": experiment_id} if path == "runs/create" else {"run_id": run_id}
    error(api.request("POST", f"/api/2.0/mlflow/{path}", {**ref, **body}), 400)
