"""Logged models (MLflow 3): the raw REST API, search, model artifacts, and the real 3.x client end to end."""

import re

import pytest

from tracking.models import LoggedModel

BASE = "/api/2.0/mlflow/logged-models"
MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")


def create(api, experiment_id, status=200, **fields):
    return api.call("CreateLoggedModel", "POST", BASE, {"experiment_id": experiment_id, **fields}, status=status)


def new_model(api, experiment_id, **fields) -> str:
    return create(api, experiment_id, **fields)["model"]["info"]["model_id"]


def get(api, model_id, status=200, query=""):
    return api.call("GetLoggedModel", "GET", f"{BASE}/{model_id}{query}", status=status)


def log_model_metrics(api, run_id, model_id, *points):
    """Metrics of a logged model, sent as the client sends them: runs/log-batch with model_id."""
    metrics = [{"timestamp": 1000, "step": 0, **point, "model_id": model_id} for point in points]
    api.call("LogBatch", "POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": run_id, "metrics": metrics})


# --- create / get ---------------------------------------------------------------------------------


def test_create_returns_a_pending_model_under_the_experiment_root(api, experiment_id, run_id):
    body = create(
        api, experiment_id, name="model", model_type="sklearn", source_run_id=run_id,
        params=[{"key": "alpha", "value": "0.5"}, {"key": "p1", "value": "a"}],
        tags=[{"key": "mlflow.user", "value": "root"}, {"key": "mlflow.source.name", "value": "s.py"},
              {"key": "mlflow.source.type", "value": "LOCAL"}],
    )
    info = body["model"]["info"]
    model_id = info["model_id"]
    assert MODEL_ID.match(model_id), model_id
    assert info["experiment_id"] == experiment_id
    assert info["name"] == "model"
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts"
    assert info["model_type"] == "sklearn"
    assert info["source_run_id"] == run_id
    assert info["creation_timestamp_ms"] == info["last_updated_timestamp_ms"] > 0
    assert [t["key"] for t in info["tags"]] == ["mlflow.source.name", "mlflow.source.type", "mlflow.user"]  # by key
    assert body["model"]["data"]["params"] == [{"key": "alpha", "value": "0.5"}, {"key": "p1", "value": "a"}]
    assert get(api, model_id) == body


def test_model_type_is_present_even_when_empty(api, experiment_id):
    info = create(api, experiment_id, name="plain")["model"]["info"]
    assert info["model_type"] == ""  # as the reference server sends it (golden log)
    assert "source_run_id" not in info and "tags" not in info


def test_a_name_is_generated_when_none_is_given(api, experiment_id):
    first = create(api, experiment_id)["model"]["info"]["name"]
    second = create(api, experiment_id, name="")["model"]["info"]["name"]
    assert first and second


@pytest.mark.parametrize("char", ["/", ":", ".", "%", '"', "'"])
def test_names_with_path_or_quote_characters_are_refused(api, experiment_id, char):
    body = create(api, experiment_id, name=f"bad{char}name", status=400)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"


def test_the_experiment_must_exist_and_be_active(api, experiment_id):
    missing = create(api, "987654", status=404)
    assert missing["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    api.call("DeleteExperiment", "POST", "/api/2.0/mlflow/experiments/delete", {"experiment_id": experiment_id})
    deleted = create(api, experiment_id, name="m", status=400)
    assert deleted["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "must be in the 'active' state" in deleted["message"]


def test_experiment_id_is_required(api):
    body = api.call("CreateLoggedModel", "POST", BASE, {"name": "m"}, status=400)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"


def test_a_missing_model_is_404(api, db):
    body = get(api, "m-" + "0" * 32, status=404)
    assert body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "m-" + "0" * 32 in body["message"]


# --- finalize / delete ----------------------------------------------------------------------------


@pytest.mark.parametrize("status, expected", [
    ("LOGGED_MODEL_READY", "LOGGED_MODEL_READY"),
    (2, "LOGGED_MODEL_READY"),
    ("LOGGED_MODEL_UPLOAD_FAILED", "LOGGED_MODEL_UPLOAD_FAILED"),
    (3, "LOGGED_MODEL_UPLOAD_FAILED"),
])
def test_finalize_takes_the_status_as_name_or_number(api, experiment_id, status, expected):
    model_id = new_model(api, experiment_id, name="m")
    created = get(api, model_id)["model"]["info"]
    body = api.call("FinalizeLoggedModel", "PATCH", f"{BASE}/{model_id}", {"model_id": model_id, "status": status})
    info = body["model"]["info"]
    assert info["status"] == expected
    assert info["last_updated_timestamp_ms"] >= created["last_updated_timestamp_ms"]
    assert get(api, model_id)["model"]["info"]["status"] == expected


def test_finalize_needs_a_status_and_an_existing_model(api, experiment_id):
    model_id = new_model(api, experiment_id, name="m")
    body = api.call("FinalizeLoggedModel", "PATCH", f"{BASE}/{model_id}", {"model_id": model_id}, status=400)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    missing = "m-" + "1" * 32
    api.call("FinalizeLoggedModel", "PATCH", f"{BASE}/{missing}", {"model_id": missing, "status": "LOGGED_MODEL_READY"},
             status=404)


def test_a_deleted_model_is_only_readable_with_allow_deleted(api, experiment_id):
    model_id = new_model(api, experiment_id, name="m")
    assert api.call("DeleteLoggedModel", "DELETE", f"{BASE}/{model_id}") == {}
    assert get(api, model_id, status=404)["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert get(api, model_id, query="?allow_deleted=true")["model"]["info"]["model_id"] == model_id
    assert get(api, model_id, query="?allow_deleted=false", status=404)
    api.call("DeleteLoggedModel", "DELETE", f"{BASE}/{model_id}", status=404)  # already gone


# --- tags and params ------------------------------------------------------------------------------


def tags_of(api, model_id) -> dict:
    return {t["key"]: t["value"] for t in get(api, model_id)["model"]["info"].get("tags", [])}


def test_set_tags_upserts_and_answers_an_empty_body(api, experiment_id):
    model_id = new_model(api, experiment_id, name="m", tags=[{"key": "a", "value": "1"}])
    body = api.call("SetLoggedModelTags", "PATCH", f"{BASE}/{model_id}/tags",
                    {"tags": [{"key": "a", "value": "2"}, {"key": "b", "value": "3"}]})
    assert body == {}  # golden log: the reference server answers {} here
    assert tags_of(api, model_id) == {"a": "2", "b": "3"}
    tag_keys = [t["key"] for t in get(api, model_id)["model"]["info"]["tags"]]
    assert tag_keys == sorted(tag_keys)


def test_delete_tag(api, experiment_id):
    model_id = new_model(api, experiment_id, name="m", tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    assert api.call("DeleteLoggedModelTag", "DELETE", f"{BASE}/{model_id}/tags/a") == {}
    assert tags_of(api, model_id) == {"b": "2"}


def test_deleting_a_missing_tag_is_404(api, experiment_id):
    model_id = new_model(api, experiment_id, name="m")
    body = api.call("DeleteLoggedModelTag", "DELETE", f"{BASE}/{model_id}/tags/k", status=404)
    assert body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert body["message"] == f"No tag with key 'k' found for model with ID '{model_id}'."


def test_tags_of_a_missing_model_are_404(api, db):
    missing = "m-" + "2" * 32
    body = {"tags": [{"key": "a", "value": "1"}]}
    api.call("SetLoggedModelTags", "PATCH", f"{BASE}/{missing}/tags", body, status=404)


def test_log_params(api, experiment_id):
    model_id = new_model(api, experiment_id, name="m", params=[{"key": "a", "value": "1"}])
    body = api.call("LogLoggedModelParamsRequest", "POST", f"{BASE}/{model_id}/params",
                    {"model_id": model_id, "params": [{"key": "b", "value": "2"}, {"key": "c", "value": "3"}]})
    assert body == {}
    params = {p["key"]: p["value"] for p in get(api, model_id)["model"]["data"]["params"]}
    assert params == {"a": "1", "b": "2", "c": "3"}


def test_metrics_logged_with_a_model_id_show_in_the_model(api, experiment_id, run_id):
    model_id = new_model(api, experiment_id, name="m", source_run_id=run_id)
    log_model_metrics(api, run_id, model_id,
                      {"key": "acc", "value": 0.5, "timestamp": 10, "step": 0},
                      {"key": "acc", "value": 0.7, "timestamp": 20, "step": 1,
                       "dataset_name": "eval", "dataset_digest": "abc"})
    metrics = get(api, model_id)["model"]["data"]["metrics"]
    assert [(m["key"], m["value"], m["step"]) for m in metrics] == [("acc", 0.5, 0), ("acc", 0.7, 1)]
    assert all(m["model_id"] == model_id and m["run_id"] == run_id for m in metrics)
    assert (metrics[1]["dataset_name"], metrics[1]["dataset_digest"]) == ("eval", "abc")
    # the run keeps the metric too
    run = api.call("GetRun", "GET", f"/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]
    assert [(m["key"], m["value"]) for m in run["data"]["metrics"]] == [("acc", 0.7)]


@pytest.mark.parametrize("alone", [True, False], ids=["metrics-alone", "with-a-param"])
def test_points_logged_again_with_a_model_id_join_the_model(api, experiment_id, run_id, alone):
    # after log_model, the 3.x client sends the model step's metrics again, now with model_id: the stored points
    # (identical otherwise) must take the model, not be dropped as duplicates; a point twice in one batch is fine
    point = {"key": "rmse", "value": 0.25, "timestamp": 10, "step": 3}
    api.call("LogBatch", "POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": run_id, "metrics": [point, point]})
    model_id = new_model(api, experiment_id, name="m", source_run_id=run_id)
    again = {"run_id": run_id, "metrics": [{**point, "model_id": model_id}, point]}
    if not alone:
        again["params"] = [{"key": "alpha", "value": "1"}]
    api.call("LogBatch", "POST", "/api/2.0/mlflow/runs/log-batch", again)
    metrics = get(api, model_id)["model"]["data"]["metrics"]
    assert [(m["key"], m["value"], m["step"], m["model_id"]) for m in metrics] == [("rmse", 0.25, 3, model_id)]
    history = api.call("GetMetricHistory", "GET", f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=rmse")
    assert len(history["metrics"]) == 1  # still one point in the run's history


def test_log_outputs_links_the_model_to_the_run(api, experiment_id, run_id):
    model_id = new_model(api, experiment_id, name="m", source_run_id=run_id)
    api.call("LogOutputs", "POST", "/api/2.0/mlflow/runs/outputs",
             {"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]})
    run = api.call("GetRun", "GET", f"/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]
    assert run["outputs"]["model_outputs"] == [{"model_id": model_id, "step": 0}]


# --- search ---------------------------------------------------------------------------------------


def search(api, status=200, **body):
    return api.call("SearchLoggedModels", "POST", f"{BASE}/search", body, status=status)


def names(body) -> list[str]:
    return [m["info"]["name"] for m in body.get("models", [])]


@pytest.fixture
def zoo(api, experiment_id, run_id):
    """Three live models with fixed creation times, metrics on datasets, a deleted one and one elsewhere."""
    alpha = new_model(api, experiment_id, name="alpha", model_type="sklearn", source_run_id=run_id,
                      params=[{"key": "lr", "value": "0.1"}], tags=[{"key": "team", "value": "red"}])
    beta = new_model(api, experiment_id, name="beta", model_type="torch",
                     params=[{"key": "lr", "value": "0.2"}], tags=[{"key": "team", "value": "blue"}])
    gamma = new_model(api, experiment_id, name="gamma",
                      params=[{"key": "lr", "value": "0.1"}], tags=[{"key": "team", "value": "Red"}])
    delta = new_model(api, experiment_id, name="delta")
    api.call("FinalizeLoggedModel", "PATCH", f"{BASE}/{alpha}", {"model_id": alpha, "status": "LOGGED_MODEL_READY"})
    api.call("DeleteLoggedModel", "DELETE", f"{BASE}/{delta}")
    other_experiment = api.call("CreateExperiment", "POST", "/api/2.0/mlflow/experiments/create", {"name": "other"})
    new_model(api, other_experiment["experiment_id"], name="alpha")
    for model_id, created in ((alpha, 1000), (beta, 2000), (gamma, 3000), (delta, 4000)):
        LoggedModel.objects.filter(pk=model_id).update(creation_timestamp_ms=created)
    # latest values (later step and later time agree): alpha 0.3, beta 0.5, gamma 0.1 (0.8 on dataset ds1)
    log_model_metrics(api, run_id, alpha, {"key": "acc", "value": 0.9, "timestamp": 10, "step": 0},
                      {"key": "acc", "value": 0.3, "timestamp": 20, "step": 1})
    log_model_metrics(api, run_id, beta, {"key": "acc", "value": 0.5, "timestamp": 10, "step": 0})
    log_model_metrics(api, run_id, gamma,
                      {"key": "acc", "value": 0.8, "timestamp": 10, "step": 0,
                       "dataset_name": "ds1", "dataset_digest": "d1"},
                      {"key": "acc", "value": 0.1, "timestamp": 20, "step": 1,
                       "dataset_name": "ds2", "dataset_digest": "d2"})
    return {"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta, "experiment_id": experiment_id,
            "run_id": run_id}


def test_search_requires_experiment_ids(api, db):
    body = search(api, status=400)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"


def test_search_default_order_hides_deleted_models_and_other_experiments(api, zoo):
    body = search(api, experiment_ids=[zoo["experiment_id"]])
    assert names(body) == ["gamma", "beta", "alpha"]  # creation_timestamp DESC
    assert "next_page_token" not in body


def test_search_ties_on_creation_time_break_on_model_id(api, zoo):
    LoggedModel.objects.filter(pk__in=[zoo["alpha"], zoo["beta"], zoo["gamma"]]).update(creation_timestamp_ms=5000)
    body = search(api, experiment_ids=[zoo["experiment_id"]])
    ids = [m["info"]["model_id"] for m in body["models"]]
    assert ids == sorted(ids)


@pytest.mark.parametrize("filter_string, expected", [
    ("name = 'alpha'", ["alpha"]),
    ("attributes.name = 'alpha'", ["alpha"]),
    ("name = 'ALPHA'", []),
    ("name != 'alpha'", ["gamma", "beta"]),
    ("name LIKE '%a'", ["gamma", "beta", "alpha"]),
    ("name LIKE 'AL%'", []),
    ("name ILIKE 'AL%'", ["alpha"]),
    ("name IN ('alpha', 'gamma')", ["gamma", "alpha"]),
    ("status = 'LOGGED_MODEL_READY'", ["alpha"]),
    ("status != 'LOGGED_MODEL_READY'", ["gamma", "beta"]),
    ("status IN ('LOGGED_MODEL_PENDING')", ["gamma", "beta"]),
    ("model_type = 'sklearn'", ["alpha"]),
    ("model_type = ''", ["gamma"]),
    ("creation_timestamp > 1000", ["gamma", "beta"]),
    ("creation_timestamp <= 2000", ["beta", "alpha"]),
    ("creation_time = 3000", ["gamma"]),
    ("params.lr = '0.1'", ["gamma", "alpha"]),
    ("params.lr != '0.1'", ["beta"]),
    ("params.lr LIKE '0.%'", ["gamma", "beta", "alpha"]),
    ("tags.team = 'red'", ["alpha"]),
    ("tags.team ILIKE 'red'", ["gamma", "alpha"]),
    ("tags.team LIKE 'R%'", ["gamma"]),
    ("tags.missing = 'x'", []),
    ("params.lr = '0.1' AND tags.team = 'Red'", ["gamma"]),
    ("metrics.acc > 0.6", []),  # 0.9 and 0.8 are old values: only the latest counts
    ("metrics.acc < 0.4", ["gamma", "alpha"]),
    ("metrics.acc = 0.5", ["beta"]),
    ("metrics.acc >= 0.3 AND name != 'beta'", ["alpha"]),
    ("metrics.nope > 0", []),
])
def test_search_filters(api, zoo, filter_string, expected):
    assert names(search(api, experiment_ids=[zoo["experiment_id"]], filter=filter_string)) == expected


def test_search_filters_on_source_run_id(api, zoo):
    body = search(api, experiment_ids=[zoo["experiment_id"]], filter=f"source_run_id = '{zoo['run_id']}'")
    assert names(body) == ["alpha"]


@pytest.mark.parametrize("datasets, filter_string, expected", [
    ([{"dataset_name": "ds1"}], "metrics.acc > 0.6", ["gamma"]),
    ([{"dataset_name": "ds1", "dataset_digest": "d1"}], "metrics.acc > 0.6", ["gamma"]),
    ([{"dataset_name": "ds1", "dataset_digest": "other"}], "metrics.acc > 0.6", []),
    ([{"dataset_name": "ds2"}], "metrics.acc < 0.4", ["gamma"]),
    ([{"dataset_name": "ds1"}], "metrics.acc < 0.4", []),
    ([{"dataset_name": "ds1"}, {"dataset_name": "ds2"}], "metrics.acc < 0.4", ["gamma"]),
])
def test_search_metric_filters_can_be_restricted_to_datasets(api, zoo, datasets, filter_string, expected):
    body = search(api, experiment_ids=[zoo["experiment_id"]], filter=filter_string, datasets=datasets)
    assert names(body) == expected


def test_datasets_alone_keep_only_models_with_metrics_on_them(api, zoo):
    # MLflow's store: "If there are dataset filters but no metric filters, filter for models that have any
    # metrics on the datasets" (SqlAlchemyStore._apply_filter_string_datasets_search_logged_models).
    body = search(api, experiment_ids=[zoo["experiment_id"]], datasets=[{"dataset_name": "ds1"}])
    assert names(body) == ["gamma"]


def test_a_dataset_needs_a_name(api, zoo):
    body = search(api, experiment_ids=[zoo["experiment_id"]], filter="metrics.acc > 0",
                  datasets=[{"dataset_digest": "d1"}], status=400)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("order_by, expected", [
    ([{"field_name": "name", "ascending": True}], ["alpha", "beta", "gamma"]),
    ([{"field_name": "name", "ascending": False}], ["gamma", "beta", "alpha"]),
    ([{"field_name": "name"}], ["alpha", "beta", "gamma"]),  # ascending by default
    ([{"field_name": "creation_timestamp", "ascending": True}], ["alpha", "beta", "gamma"]),
    ([{"field_name": "model_type", "ascending": True}, {"field_name": "name", "ascending": False}],
     ["gamma", "alpha", "beta"]),
    ([{"field_name": "metrics.acc", "ascending": True}], ["gamma", "alpha", "beta"]),
    ([{"field_name": "metrics.acc", "ascending": False}], ["beta", "alpha", "gamma"]),
    ([{"field_name": "metrics.acc", "ascending": False, "dataset_name": "ds1"}],
     ["gamma", "beta", "alpha"]),  # only gamma has ds1 values; the rest (no value) keep the default order
    ([{"field_name": "metrics.nope", "ascending": True}], ["gamma", "beta", "alpha"]),
])
def test_search_order_by(api, zoo, order_by, expected):
    assert names(search(api, experiment_ids=[zoo["experiment_id"]], order_by=order_by)) == expected


def test_models_without_the_metric_sort_last_both_ways(api, zoo):
    epsilon = new_model(api, zoo["experiment_id"], name="epsilon")
    LoggedModel.objects.filter(pk=epsilon).update(creation_timestamp_ms=9000)
    for ascending in (True, False):
        body = search(api, experiment_ids=[zoo["experiment_id"]],
                      order_by=[{"field_name": "metrics.acc", "ascending": ascending}])
        assert names(body)[-1] == "epsilon"


def test_search_returns_the_full_model(api, zoo):
    (model,) = search(api, experiment_ids=[zoo["experiment_id"]], filter="name = 'alpha'")["models"]
    assert model["info"]["tags"] == [{"key": "team", "value": "red"}]
    assert model["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    assert [m["value"] for m in model["data"]["metrics"]] == [0.9, 0.3]


@pytest.mark.parametrize("filter_string", [
    "foo.bar = 'x'",
    "nope = 'x'",
    "name = alpha",
    "metrics.acc > 'x'",
    "name = 'a' OR name = 'b'",
    "creation_timestamp > 'yesterday'",
    "name ~ 'x'",
])
def test_bad_filters_are_invalid_parameter_values(api, zoo, filter_string):
    body = search(api, experiment_ids=[zoo["experiment_id"]], filter=filter_string, status=400)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("field_name", ["nope", "params.lr", "tags.team", "bogus.x"])
def test_bad_order_by_is_an_invalid_parameter_value(api, zoo, field_name):
    body = search(api, experiment_ids=[zoo["experiment_id"]], order_by=[{"field_name": field_name}], status=400)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"


def test_pagination_returns_every_model_exactly_once(api, experiment_id):
    created = {new_model(api, experiment_id, name=f"m{i}") for i in range(7)}
    seen, token, pages = [], None, 0
    while True:
        body = search(api, experiment_ids=[experiment_id], max_results=3, **({"page_token": token} if token else {}))
        pages += 1
        seen += [m["info"]["model_id"] for m in body.get("models", [])]
        token = body.get("next_page_token")
        if not token:
            break
        assert pages < 5
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7 and set(seen) == created
    everything = search(api, experiment_ids=[experiment_id])
    assert [m["info"]["model_id"] for m in everything["models"]] == seen  # same order as one big page


def test_a_page_token_is_bound_to_its_search(api, experiment_id):
    for i in range(3):
        new_model(api, experiment_id, name=f"m{i}")
    first = search(api, experiment_ids=[experiment_id], max_results=2, filter="name LIKE 'm%'")
    token = first["next_page_token"]
    again = search(api, experiment_ids=[experiment_id], max_results=2, filter="name LIKE 'm%'", page_token=token)
    assert len(again["models"]) == 1 and "next_page_token" not in again
    other_filter = search(api, experiment_ids=[experiment_id], max_results=2, filter="name LIKE 'm1%'",
                          page_token=token, status=400)
    assert other_filter["error_code"] == "INVALID_PARAMETER_VALUE"
    other_order = search(api, experiment_ids=[experiment_id], max_results=2, filter="name LIKE 'm%'",
                         order_by=[{"field_name": "name"}], page_token=token, status=400)
    assert other_order["error_code"] == "INVALID_PARAMETER_VALUE"
    garbage = search(api, experiment_ids=[experiment_id], page_token="not a token!", status=400)
    assert garbage["error_code"] == "INVALID_PARAMETER_VALUE"


def test_max_results_must_be_positive(api, experiment_id):
    search(api, experiment_ids=[experiment_id], max_results=0, status=400)


# --- logged-model artifacts -----------------------------------------------------------------------

# The artifact routes run outside a transaction (atomic=False), as in production; inside the test's own
# transaction, one error response would mark it for rollback and break the next request of the test.
no_test_transaction = pytest.mark.django_db(transaction=True)


def upload(api, experiment_id, model_id, name, content: bytes):
    path = f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/models/{model_id}/artifacts/{name}"
    response = api.request("PUT", path, content, content_type="application/octet-stream")
    assert response.status_code == 200, response.content


@pytest.fixture
def stored_model(api, experiment_id, local_store):
    model_id = new_model(api, experiment_id, name="model")
    upload(api, experiment_id, model_id, "MLmodel", b"flavors: {}\n")
    upload(api, experiment_id, model_id, "sub/weights.bin", b"\x00\x01\x02")
    return model_id


@no_test_transaction
def test_list_model_artifacts(api, experiment_id, stored_model):
    path = f"{BASE}/{stored_model}/artifacts/directories"
    root = api.call("ListLoggedModelArtifacts", "GET", f"{path}?artifact_directory_path=")
    assert root["root_uri"] == f"mlflow-artifacts:/{experiment_id}/models/{stored_model}/artifacts"
    assert sorted((f["path"], f["is_dir"]) for f in root["files"]) == [("MLmodel", False), ("sub", True)]
    assert next(f for f in root["files"] if f["path"] == "MLmodel")["file_size"] == len(b"flavors: {}\n")
    sub = api.call("ListLoggedModelArtifacts", "GET", f"{path}?artifact_directory_path=sub")
    assert [(f["path"], f["is_dir"], f["file_size"]) for f in sub["files"]] == [("sub/weights.bin", False, 3)]
    empty = api.call("ListLoggedModelArtifacts", "GET", f"{path}?artifact_directory_path=nothing-here")
    assert "files" not in empty


@no_test_transaction
def test_get_model_artifact_streams_an_attachment(api, stored_model):
    response = api.request("GET", f"/ajax-api/2.0/mlflow/logged-models/{stored_model}/artifacts/files",
                           {"artifact_file_path": "sub/weights.bin"})
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x00\x01\x02"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("attachment")
    assert "weights.bin" in response["Content-Disposition"]


@no_test_transaction
def test_model_artifact_paths_cannot_escape_the_model_root(api, stored_model):
    for bad in ("../MLmodel", "../../x", "sub/../../..", "%2e%2e/x", "/etc/passwd"):
        files = api.request("GET", f"/ajax-api/2.0/mlflow/logged-models/{stored_model}/artifacts/files",
                            {"artifact_file_path": bad})
        assert files.status_code == 400, (bad, files.content)
        assert files.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        listing = api.request("GET", f"{BASE}/{stored_model}/artifacts/directories", {"artifact_directory_path": bad})
        assert listing.status_code == 400, (bad, listing.content)


@no_test_transaction
def test_artifacts_of_a_missing_or_deleted_model_are_404(api, stored_model):
    api.call("DeleteLoggedModel", "DELETE", f"{BASE}/{stored_model}")
    response = api.request("GET", f"{BASE}/{stored_model}/artifacts/directories")
    assert response.status_code == 404
    response = api.request("GET", f"/ajax-api/2.0/mlflow/logged-models/{stored_model}/artifacts/files",
                           {"artifact_file_path": "MLmodel"})
    assert response.status_code == 404


# --- the real MLflow 3.x client -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sklearn_log_model_and_load_it_back(mlflow_client):
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.entities import LoggedModelStatus
    from sklearn.linear_model import LinearRegression

    X = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    y = np.array([2.0, 4.0, 6.0])
    model = LinearRegression().fit(X, y)
    experiment = mlflow.set_experiment("lm-exp")
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.5")
        # pip_requirements given: skips the slow requirement inference (a subprocess), nothing the server sees
        model_info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(1),
                                              pip_requirements=["scikit-learn"])
        mlflow.log_metric("rmse", 0.25, model_id=model_info.model_id)
    model_id = model_info.model_id
    assert MODEL_ID.match(model_id)

    logged = mlflow_client.get_logged_model(model_id)
    assert logged.status == LoggedModelStatus.READY
    assert logged.name == "model"
    assert logged.source_run_id == run.info.run_id
    assert logged.experiment_id == experiment.experiment_id
    assert logged.artifact_location == f"mlflow-artifacts:/{experiment.experiment_id}/models/{model_id}/artifacts"
    assert logged.params == {"alpha": "0.5"}
    assert [(m.key, m.value) for m in logged.metrics] == [("rmse", 0.25)]

    for uri in (f"models:/{model_id}", f"runs:/{run.info.run_id}/model"):
        loaded = mlflow.pyfunc.load_model(uri)
        np.testing.assert_allclose(loaded.predict(pd.DataFrame({"a": [4.0, 5.0]})), [8.0, 10.0])

    found = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list")
    assert [m.model_id for m in found] == [model_id]
    by_name = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], filter_string="name = 'model'",
                                          output_format="list")
    assert [m.model_id for m in by_name] == [model_id]

    mlflow_client.set_logged_model_tags(model_id, {"stage": "candidate", "owner": "me"})
    assert mlflow_client.get_logged_model(model_id).tags["stage"] == "candidate"
    mlflow_client.delete_logged_model_tag(model_id, "stage")
    tags = mlflow_client.get_logged_model(model_id).tags
    assert "stage" not in tags and tags["owner"] == "me"

    fetched = mlflow_client.get_run(run.info.run_id)
    assert [o.model_id for o in fetched.outputs.model_outputs] == [model_id]
