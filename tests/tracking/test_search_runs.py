"""search_runs semantics on PostgreSQL through the API (spec §4), and query-count caps that keep
search, get and log-batch from growing with the amount of data."""

import uuid
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.conftest import Api
from tracking.models import LatestMetric, Metric, Param, Run, RunTag

RUNS = "/api/2.0/mlflow/runs"


def create_experiment(api, name):
    return api.call("CreateExperiment", "POST", "/api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"]


def create_run(api, experiment_id, **fields):
    body = {"experiment_id": experiment_id, **fields}
    return api.call("CreateRun", "POST", f"{RUNS}/create", body)["run"]["info"]["run_id"]


def search(api, experiment_ids, **body):
    return api.call("SearchRuns", "POST", f"{RUNS}/search", {"experiment_ids": experiment_ids, **body})


def search_fails(api, experiment_ids, **body):
    response = api.request("POST", f"{RUNS}/search", {"experiment_ids": experiment_ids, **body})
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    return response.json()["message"]


@contextmanager
def shared_data(django_db_blocker):
    """Data built once for a whole module, in a transaction rolled back at the end of the module.

    Each test still runs in its own savepoint inside it (pytest-django's `db`), so tests stay isolated.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        yield
        transaction.set_rollback(True)


# --- a small, hand-made data set --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with shared_data(django_db_blocker):
        yield build_world(Api())


def build_world(api):
    """Four runs in one experiment (delta deleted); names map to run ids.

    run    user status    start end   metrics            params                     tags                  dataset
    alpha  u1   FINISHED  1000  2000  acc=0.9  loss=0.1  lr=0.01, "my param"="x y"  team=Core, dot.key=v  train/abc (training)
    beta   u2   RUNNING   2000  -     acc=0.5  loss=NaN  lr=0.1                     team=core             test/def (eval)
    gamma  u1   FAILED    3000  3500  acc=0.7            -                          -                     -
    delta  u3   FINISHED  4000  4100  acc=0.99           lr=9                       team=core             - (deleted)
    """
    experiment_id = create_experiment(api, "world")
    spec = {
        "alpha": ("u1", "FINISHED", 1000, 2000, {"acc": 0.9, "loss": 0.1}, {"lr": "0.01", "my param": "x y"},
                  {"team": "Core", "dot.key": "v"}),
        "beta": ("u2", "RUNNING", 2000, None, {"acc": 0.5, "loss": "NaN"}, {"lr": "0.1"}, {"team": "core"}),
        "gamma": ("u1", "FAILED", 3000, 3500, {"acc": 0.7}, {}, {}),
        "delta": ("u3", "FINISHED", 4000, 4100, {"acc": 0.99}, {"lr": "9"}, {"team": "core"}),
    }
    ids = {}
    for name, (user, status, start, end, metrics, params, tags) in spec.items():
        run_id = ids[name] = create_run(api, experiment_id, run_name=name, user_id=user, start_time=start)
        api.call("LogBatch", "POST", f"{RUNS}/log-batch", {
            "run_id": run_id,
            "metrics": [{"key": k, "value": v, "timestamp": start, "step": 0} for k, v in metrics.items()],
            "params": [{"key": k, "value": v} for k, v in params.items()],
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        })
        update = {"run_id": run_id, "status": status, **({"end_time": end} if end else {})}
        api.call("UpdateRun", "POST", f"{RUNS}/update", update)
    for name, dataset, digest, context in (("alpha", "train", "abc", "training"), ("beta", "test", "def", "eval")):
        api.call("LogInputs", "POST", f"{RUNS}/log-inputs", {"run_id": ids[name], "datasets": [{
            "tags": [{"key": "mlflow.data.context", "value": context}],
            "dataset": {"name": dataset, "digest": digest, "source_type": "code", "source": "{}"},
        }]})
    api.call("DeleteRun", "POST", f"{RUNS}/delete", {"run_id": ids["delta"]})
    ids["experiment_id"] = experiment_id
    return ids


def found(api, world, filter_string="", **body):
    """Names of the matching runs, in the order the server returns them."""
    names = {run_id: name for name, run_id in world.items()}
    result = search(api, [world["experiment_id"]], filter=filter_string, **body)
    return [names[r["info"]["run_id"]] for r in result.get("runs", [])]


# default order is start_time DESC: delta (deleted), gamma, beta, alpha
@pytest.mark.parametrize("filter_string, expected", [
    ("", ["gamma", "beta", "alpha"]),
    # metrics: numeric comparators
    ("metrics.acc = 0.5", ["beta"]),
    ("metrics.acc != 0.5", ["gamma", "alpha"]),
    ("metrics.acc > 0.7", ["alpha"]),
    ("metrics.acc >= 0.7", ["gamma", "alpha"]),
    ("metrics.acc < 0.7", ["beta"]),
    ("metrics.acc <= 0.7", ["gamma", "beta"]),
    ("metric.acc > 0", ["gamma", "beta", "alpha"]),
    ("metrics.acc > 5e-1", ["gamma", "alpha"]),
    ("metrics.acc >= -1", ["gamma", "beta", "alpha"]),
    # NaN matches only !=, runs without the metric never match
    ("metrics.loss = 0.1", ["alpha"]),
    ("metrics.loss != 0.1", ["beta"]),
    ("metrics.loss != 5", ["beta", "alpha"]),
    ("metrics.loss < 1", ["alpha"]),
    ("metrics.loss > 0", ["alpha"]),
    ("metrics.loss >= -1e308", ["alpha"]),
    ("metrics.missing >= 0", []),
    ("metrics.missing != 0", []),
    # params and tags
    ("params.lr = '0.01'", ["alpha"]),
    ("params.lr = \"0.1\"", ["beta"]),
    ("params.lr != '0.01'", ["beta"]),
    ("params.lr LIKE '0.%'", ["beta", "alpha"]),
    ("params.lr LIKE '%.1'", ["beta"]),
    ("params.lr LIKE '0._1'", ["alpha"]),
    ("params.lr ILIKE '0.1'", ["beta"]),
    ("params.lr IS NULL", ["gamma"]),
    ("params.lr IS NOT NULL", ["beta", "alpha"]),
    ("param.lr = '0.01'", ["alpha"]),
    ("parameters.lr = '0.01'", ["alpha"]),
    ("tags.team = 'core'", ["beta"]),
    ("tags.team = 'Core'", ["alpha"]),
    ("tags.team LIKE 'c%'", ["beta"]),  # LIKE is case-sensitive
    ("tags.team ILIKE 'c%'", ["beta", "alpha"]),
    ("tags.team != 'core'", ["alpha"]),
    ("tags.team IS NULL", ["gamma"]),
    ("tag.team IS NOT NULL", ["beta", "alpha"]),
    ("tags.mlflow.runName = 'beta'", ["beta"]),
    ("tags.`mlflow.runName` = 'gamma'", ["gamma"]),
    # quoted keys with spaces and dots
    ("params.`my param` = 'x y'", ["alpha"]),
    ("params.\"my param\" = 'x y'", ["alpha"]),
    ("tags.`dot.key` = 'v'", ["alpha"]),
    ("tags.\"dot.key\" = 'v'", ["alpha"]),
    ("tags.dot.key = 'v'", ["alpha"]),
    # attributes
    ("attributes.run_name = 'alpha'", ["alpha"]),
    ("run_name LIKE '%a'", ["gamma", "beta", "alpha"]),
    ("attributes.run_name ILIKE 'BE%'", ["beta"]),
    ("attributes.`run name` = 'gamma'", ["gamma"]),
    ("attributes.status = 'FINISHED'", ["alpha"]),
    ("attributes.status != 'FINISHED'", ["gamma", "beta"]),
    ("attr.user_id = 'u1'", ["gamma", "alpha"]),
    ("run.user_id LIKE 'u%'", ["gamma", "beta", "alpha"]),
    ("attributes.start_time >= 2000", ["gamma", "beta"]),
    ("attributes.start_time = 1000", ["alpha"]),
    ("attributes.end_time > 1500", ["gamma", "alpha"]),
    ("attributes.end_time < 3000", ["alpha"]),
    ("created < 2000", ["alpha"]),
    ("Created >= 3000", ["gamma"]),
    ("status = 'RUNNING' AND metrics.acc < 1", ["beta"]),
    # datasets
    ("dataset.name = 'train'", ["alpha"]),
    ("datasets.digest = 'def'", ["beta"]),
    ("dataset.context = 'training'", ["alpha"]),
    ("dataset.context != 'training'", ["beta"]),
    ("dataset.name IN ('train', 'test')", ["beta", "alpha"]),
    ("dataset.name NOT IN ('train')", ["beta"]),
    ("dataset.name LIKE 't%'", ["beta", "alpha"]),
    ("dataset.digest ILIKE 'ABC'", ["alpha"]),
    # conjunctions
    ("metrics.acc > 0.6 AND params.lr = '0.01'", ["alpha"]),
    ("metrics.acc > 0.6 and tags.team IS NULL and attributes.user_id = 'u1'", ["gamma"]),
])
def test_filters(api, world, filter_string, expected):
    assert found(api, world, filter_string) == expected


def test_run_id_in_and_not_in(api, world):
    a, b = world["alpha"], world["beta"]
    assert found(api, world, f"attributes.run_id IN ('{a}', '{b}')") == ["beta", "alpha"]
    assert found(api, world, f"run_id NOT IN ('{a}')") == ["gamma", "beta"]
    assert found(api, world, f"attributes.run_id = '{a}'") == ["alpha"]


@pytest.mark.parametrize("order_by, expected", [
    (["metrics.acc DESC"], ["alpha", "gamma", "beta"]),
    (["metrics.acc ASC"], ["beta", "gamma", "alpha"]),
    (["metrics.acc"], ["beta", "gamma", "alpha"]),
    # numbers, then NaN, then runs without the metric: in both directions
    (["metrics.loss ASC"], ["alpha", "beta", "gamma"]),
    (["metrics.loss DESC"], ["alpha", "beta", "gamma"]),
    # params/tags: missing last in both directions
    (["params.lr ASC"], ["alpha", "beta", "gamma"]),
    (["params.lr DESC"], ["beta", "alpha", "gamma"]),
    (["tags.team DESC"], ["beta", "alpha", "gamma"]),
    (["params.`my param` DESC"], ["alpha", "gamma", "beta"]),
    # attributes
    (["attributes.start_time ASC"], ["alpha", "beta", "gamma"]),
    (["start_time DESC"], ["gamma", "beta", "alpha"]),
    (["attributes.run_name"], ["alpha", "beta", "gamma"]),
    (["attributes.run_name DESC"], ["gamma", "beta", "alpha"]),
    (["attributes.status"], ["gamma", "alpha", "beta"]),  # FAILED, FINISHED, RUNNING
    (["attributes.user_id DESC", "attributes.start_time ASC"], ["beta", "alpha", "gamma"]),
    (["attributes.end_time ASC"], ["alpha", "gamma", "beta"]),
    (["attributes.end_time DESC"], ["gamma", "alpha", "beta"]),
    (["tags.`mlflow.runName` DESC"], ["gamma", "beta", "alpha"]),
    (["attributes.user_id", "metrics.acc DESC"], ["alpha", "gamma", "beta"]),
])
def test_order_by(api, world, order_by, expected):
    assert found(api, world, order_by=order_by) == expected


def test_run_view_type(api, world):
    assert found(api, world, run_view_type="DELETED_ONLY") == ["delta"]
    assert found(api, world, run_view_type="ALL") == ["delta", "gamma", "beta", "alpha"]
    assert found(api, world, "metrics.acc > 0.95", run_view_type="ALL") == ["delta"]
    assert found(api, world, "metrics.acc > 0.95") == []


def test_search_result_is_the_whole_run(api, world):
    body = search(api, [world["experiment_id"]], filter="attributes.run_name = 'alpha'")
    run = body["runs"][0]
    assert run["info"]["status"] == "FINISHED" and run["info"]["end_time"] == 2000
    assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"acc": 0.9, "loss": 0.1}
    assert {p["key"] for p in run["data"]["params"]} == {"lr", "my param"}
    assert run["inputs"]["dataset_inputs"][0]["dataset"]["name"] == "train"
    nan_run = search(api, [world["experiment_id"]], filter="attributes.run_name = 'beta'")["runs"][0]
    assert {m["key"]: m["value"] for m in nan_run["data"]["metrics"]}["loss"] == "NaN"


def test_multiple_experiments(api, world):
    other = create_experiment(api, "other-world")
    extra = create_run(api, other, run_name="elsewhere", start_time=2500)
    body = search(api, [world["experiment_id"], other])
    names = [r["info"]["run_name"] for r in body["runs"]]
    assert names == ["gamma", "elsewhere", "beta", "alpha"]
    assert search(api, [other])["runs"][0]["info"]["run_id"] == extra
    assert search(api, ["99999"]) == {}


def test_tie_break_is_start_time_desc_then_run_id(api):
    experiment_id = create_experiment(api, "ties")
    same = [create_run(api, experiment_id, start_time=500) for _ in range(4)]
    later = create_run(api, experiment_id, start_time=600)
    for run_id in [*same, later]:
        api.call("LogMetric", "POST", f"{RUNS}/log-metric", {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1})
    expected = [later, *sorted(same)]
    assert [r["info"]["run_id"] for r in search(api, [experiment_id])["runs"]] == expected
    by_metric = search(api, [experiment_id], order_by=["metrics.m DESC"])
    assert [r["info"]["run_id"] for r in by_metric["runs"]] == expected


@pytest.mark.parametrize("filter_string, fragment", [
    ("metrics.acc > 0.5 OR metrics.acc < 0.1", "OR"),
    ("(metrics.acc > 0.5)", ""),
    ("foo.bar = 'x'", "Invalid entity type 'foo'"),
    ("attributes.bogus = 'x'", "Invalid attribute key 'bogus'"),
    ("params.lr = 0.01", "quoted string"),
    ("tags.team = core", "quoted string"),
    ("metrics.acc > 'x'", "numeric"),
    ("metrics.acc > abc", "numeric"),
    ("params.lr > '1'", "Invalid comparator '>'"),
    ("metrics.acc LIKE '1'", "Invalid comparator 'LIKE'"),
    ("metrics.acc IS NULL", ""),
    ("attributes.run_name IN ('a')", ""),
    ("attributes.start_time > 'x'", ""),
    ("metrics.acc >", ""),
    ("params.lr = 'unterminated", ""),
    ("metrics.acc > 1 AND", ""),
])
def test_bad_filters(api, world, filter_string, fragment):
    message = search_fails(api, [world["experiment_id"]], filter=filter_string)
    assert fragment in message


@pytest.mark.parametrize("order_by", [
    ["metrics.acc SIDEWAYS"], ["foo.bar"], ["attributes.bogus"], ["metrics.acc", "metrics.acc DESC"], ["dataset.name"],
])
def test_bad_order_by(api, world, order_by):
    search_fails(api, [world["experiment_id"]], order_by=order_by)


@pytest.mark.parametrize("max_results", [0, -1, 50001])
def test_max_results_range(api, world, max_results):
    search_fails(api, [world["experiment_id"]], max_results=max_results)


def test_bad_page_token(api, world):
    assert search_fails(api, [world["experiment_id"]], page_token="abc").startswith("Invalid page token")


def test_non_integer_experiment_id(api):
    response = api.request("POST", f"{RUNS}/search", {"experiment_ids": ["abc"]})
    assert response.status_code == 400
    assert response.json()["message"].startswith("Invalid experiment ID 'abc'")


# --- many runs: pagination and query counts ----------------------------------------------------------------


def seed_runs(experiment_id: int, count: int, *, per_kind: int = 5) -> list[str]:
    """count runs, each with per_kind metrics (latest and history), params and tags; start times tie in threes."""
    runs = [
        Run(run_uuid=uuid.uuid4().hex, experiment_id=experiment_id, name=f"seed-{i}", user_id="seeder",
            status="FINISHED", start_time=10_000 + i // 3, artifact_uri=f"mlflow-artifacts:/{experiment_id}/{i}",
            lifecycle_stage="active")
        for i in range(count)
    ]
    Run.objects.bulk_create(runs)
    LatestMetric.objects.bulk_create(
        LatestMetric(run=r, key=f"m{k}", value=i % 7, timestamp=1, step=0)
        for i, r in enumerate(runs) for k in range(per_kind)
    )
    Metric.objects.bulk_create(
        Metric(run=r, key=f"m{k}", value=i % 7, timestamp=1, step=0) for i, r in enumerate(runs) for k in range(per_kind)
    )
    Param.objects.bulk_create(Param(run=r, key=f"p{k}", value=f"v{i}") for i, r in enumerate(runs) for k in range(per_kind))
    RunTag.objects.bulk_create(
        [RunTag(run=r, key=f"t{k}", value=str(i % 2)) for i, r in enumerate(runs) for k in range(per_kind - 1)]
        + [RunTag(run=r, key="mlflow.runName", value=r.name) for r in runs]
    )
    return [r.run_uuid for r in runs]


@pytest.fixture(scope="module")
def many(django_db_setup, django_db_blocker):
    with shared_data(django_db_blocker):
        experiment_id = create_experiment(Api(), "many")
        yield experiment_id, seed_runs(int(experiment_id), 300)


@pytest.mark.parametrize("order_by", [[], ["metrics.m0 DESC"], ["params.p0"], ["attributes.user_id"]])
def test_pagination_returns_each_run_once(api, many, order_by):
    experiment_id, run_ids = many
    seen, token, pages = [], None, 0
    while True:
        body = search(api, [experiment_id], max_results=70, order_by=order_by, **({"page_token": token} if token else {}))
        seen += [r["info"]["run_id"] for r in body["runs"]]
        pages += 1
        token = body.get("next_page_token")
        if not token:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 300
    assert set(seen) == set(run_ids)


def test_pagination_with_a_filter(api, many):
    experiment_id, _ = many
    expected = [r["info"]["run_id"] for r in search(api, [experiment_id], filter="tags.t0 = '1'", max_results=1000)["runs"]]
    assert len(expected) == 150
    paged, token = [], None
    while True:
        body = search(api, [experiment_id], filter="tags.t0 = '1'", max_results=40, **({"page_token": token} if token else {}))
        paged += [r["info"]["run_id"] for r in body["runs"]]
        token = body.get("next_page_token")
        if not token:
            break
    assert paged == expected


def count_queries(func) -> int:
    with CaptureQueriesContext(connection) as captured:
        func()
    return len(captured)


def test_search_runs_query_count_is_capped(api, many, django_assert_max_num_queries):
    experiment_id, _ = many
    query = {"filter": "metrics.m0 >= 0 AND params.p1 != 'x' AND tags.t2 IS NOT NULL", "order_by": ["metrics.m1 DESC"]}
    with django_assert_max_num_queries(12):
        body = search(api, [experiment_id], max_results=300, **query)
    assert len(body["runs"]) == 300
    assert all(len(r["data"]["metrics"]) == 5 and len(r["data"]["params"]) == 5 and len(r["data"]["tags"]) == 5
               for r in body["runs"])


def test_search_runs_query_count_does_not_grow_with_page_size(api, many):
    experiment_id, _ = many
    small = count_queries(lambda: search(api, [experiment_id], max_results=10))
    large = count_queries(lambda: search(api, [experiment_id], max_results=300))
    assert small == large


def test_get_run_query_count(api, many, django_assert_max_num_queries):
    _, run_ids = many
    with django_assert_max_num_queries(10):
        run = api.call("GetRun", "GET", f"{RUNS}/get", {"run_id": run_ids[0]})["run"]
    assert len(run["data"]["metrics"]) == 5


def test_log_batch_query_count(api, run_id, django_assert_max_num_queries):
    body = {
        "run_id": run_id,
        "metrics": [{"key": f"m{i % 300}", "value": i, "timestamp": i, "step": i // 300} for i in range(900)],
        "params": [{"key": f"p{i}", "value": str(i)} for i in range(50)],
        "tags": [{"key": f"t{i}", "value": str(i)} for i in range(50)],
    }
    with django_assert_max_num_queries(12):
        api.call("LogBatch", "POST", f"{RUNS}/log-batch", body)
    assert Metric.objects.filter(run_id=run_id).count() == 900
    assert LatestMetric.objects.filter(run_id=run_id).count() == 300
    assert LatestMetric.objects.get(run_id=run_id, key="m7").step == 2
    assert Param.objects.filter(run_id=run_id).count() == 50
