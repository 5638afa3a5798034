"""Query caps of the routes the other suites do not count: a constant number per request, whatever the data."""

import pytest

API = "/api/2.0/mlflow"


def create_logged_models(api, experiment_id, count):
    for i in range(count):
        body = {"experiment_id": experiment_id, "name": f"model{i}", "params": [{"key": "p", "value": str(i)}],
                "tags": [{"key": "t", "value": str(i)}]}
        api.call("CreateLoggedModel", "POST", f"{API}/logged-models", body)


@pytest.mark.parametrize("count", [3, 30])
def test_logged_model_search_is_flat(api, experiment_id, count, django_assert_max_num_queries):
    create_logged_models(api, experiment_id, count)
    with django_assert_max_num_queries(8):
        body = api.call("SearchLoggedModels", "POST", f"{API}/logged-models/search",
                        {"experiment_ids": [experiment_id], "filter": "params.p != 'x'", "max_results": 100})
    assert len(body["models"]) == count


def test_logged_model_get(api, experiment_id, django_assert_max_num_queries):
    create_logged_models(api, experiment_id, 1)
    model_id = api.call("SearchLoggedModels", "POST", f"{API}/logged-models/search",
                        {"experiment_ids": [experiment_id]})["models"][0]["info"]["model_id"]
    with django_assert_max_num_queries(7):
        api.call("GetLoggedModel", "GET", f"{API}/logged-models/{model_id}")


def test_experiment_get_and_search(api, experiment_id, django_assert_max_num_queries):
    for i in range(20):
        api.call("CreateExperiment", "POST", f"{API}/experiments/create",
                 {"name": f"capped-{i}", "tags": [{"key": "k", "value": str(i)}]})
    with django_assert_max_num_queries(5):
        api.call("GetExperiment", "GET", f"{API}/experiments/get?experiment_id={experiment_id}")
    with django_assert_max_num_queries(5):
        body = api.call("SearchExperiments", "POST", f"{API}/experiments/search", {"max_results": 100})
    assert len(body["experiments"]) >= 20


@pytest.mark.parametrize("points", [10, 500])
def test_metric_history_reads_are_flat(api, run_id, points, django_assert_max_num_queries):
    metrics = [{"key": "loss", "value": i / 10, "timestamp": i, "step": i} for i in range(points)]
    api.call("LogBatch", "POST", f"{API}/runs/log-batch", {"run_id": run_id, "metrics": metrics})
    with django_assert_max_num_queries(4):
        api.call("GetMetricHistory", "GET", f"{API}/metrics/get-history?run_id={run_id}&metric_key=loss")
    with django_assert_max_num_queries(5):
        api.call("GetMetricHistoryBulkInterval", "GET",
                 f"{API}/metrics/get-history-bulk-interval?run_ids={run_id}&metric_key=loss&max_results=50")


def test_run_artifact_listing(api, run_id, django_assert_max_num_queries):
    run = api.call("GetRun", "GET", f"{API}/runs/get?run_id={run_id}")["run"]
    store_path = run["info"]["artifact_uri"].split(":", 1)[1].lstrip("/")
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        response = api.request("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{store_path}/{name}", b"x",
                               content_type="text/plain")
        assert response.status_code == 200
    with django_assert_max_num_queries(2):
        body = api.call("ListArtifacts", "GET", f"{API}/artifacts/list?run_id={run_id}")
    assert {f["path"] for f in body["files"]} == {"a.txt", "b.txt", "sub"}
