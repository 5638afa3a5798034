"""/graphql as the MLflow web UI uses it: the UI's own queries, answered as the REST routes answer the same
request (in GraphQL's spelling and MLflow's GraphQL defaults), per-field errors, the query-safety limits,
permissions per field in SharingHub mode, and a flat number of SQL queries per request."""

import json
import re
from pathlib import Path

import pytest

from mlflow_sh.wire import camel_case
from permissions.decisions import NOT_AUTHENTICATED
from tests.conftest import Api
from tests.permissions.worlds import (
    BEER, PROJECT_IDS, WINE, bearer, build_world, rolled_back, sharinghub_mode, view_prefix,
)

# every test reads the database; the module-scoped world of the permission tests needs the test database even
# when only those tests are selected
pytestmark = pytest.mark.django_db

API = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"

# --- the queries, verbatim -------------------------------------------------------------------------------------
# The four operations the MLflow 3.17.2 web UI sends (from its bundle, mlflow/server/js/build/static/js;
# test_the_ui_sends_these_queries checks they are still there).

GET_RUN = """
  query GetRun($data: MlflowGetRunInput!) @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetRun(input: $data) {
      apiError {
        helpUrl
        code
        message
      }
      run {
        info {
          runName
          status
          runUuid
          experimentId
          artifactUri
          endTime
          lifecycleStage
          startTime
          userId
        }
        experiment {
          experimentId
          name
          tags {
            key
            value
          }
          artifactLocation
          lifecycleStage
          lastUpdateTime
        }
        modelVersions {
          status
          version
          name
          source
        }
        data {
          metrics {
            key
            value
            step
            timestamp
          }
          params {
            key
            value
          }
          tags {
            key
            value
          }
        }
        inputs {
          datasetInputs {
            dataset {
              digest
              name
              profile
              schema
              source
              sourceType
            }
            tags {
              key
              value
            }
          }
          modelInputs {
            modelId
          }
        }
        outputs {
          modelOutputs {
            modelId
            step
          }
        }
      }
    }
  }
"""

SEARCH_RUNS = """
  query SearchRuns($data: MlflowSearchRunsInput!) {
    mlflowSearchRuns(input: $data) {
      apiError {
        helpUrl
        code
        message
      }
      runs {
        info {
          runName
          status
          runUuid
          experimentId
          artifactUri
          endTime
          lifecycleStage
          startTime
          userId
        }
        experiment {
          experimentId
          name
          tags {
            key
            value
          }
          artifactLocation
          lifecycleStage
          lastUpdateTime
        }
        data {
          metrics {
            key
            value
            step
            timestamp
          }
          params {
            key
            value
          }
          tags {
            key
            value
          }
        }
        inputs {
          datasetInputs {
            dataset {
              digest
              name
              profile
              schema
              source
              sourceType
            }
            tags {
              key
              value
            }
          }
          modelInputs {
            modelId
          }
        }
        outputs {
          modelOutputs {
            modelId
            step
          }
        }
        modelVersions {
          version
          name
          creationTimestamp
          status
          source
        }
      }
    }
  }
"""

GET_EXPERIMENT = """
  query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!) @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetExperiment(input: $input) {
      apiError {
        code
        message
      }
      experiment {
        artifactLocation
        creationTime
        effectiveTraceArchivalRetention
        experimentId
        lastUpdateTime
        lifecycleStage
        name
        tags {
          key
          value
        }
      }
    }
  }
"""

GET_METRIC_HISTORY_BULK_INTERVAL = """
  query GetMetricHistoryBulkInterval($data: MlflowGetMetricHistoryBulkIntervalInput!)
  @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetMetricHistoryBulkInterval(input: $data) {
      __typename
      metrics {
        timestamp
        step
        runId
        key
        value
      }
      apiError {
        code
        message
      }
    }
  }
"""

UI_QUERIES = {"GetRun": GET_RUN, "SearchRuns": SEARCH_RUNS, "MlflowGetExperimentQuery": GET_EXPERIMENT,
              "GetMetricHistoryBulkInterval": GET_METRIC_HISTORY_BULK_INTERVAL}

# The 3.17.2 UI sends no query for these three fields; these are the forms MLflow's own server tests send.
LIST_ARTIFACTS = """
    fragment FilesFragment on MlflowListArtifactsResponse {
        files {
            path
            isDir
            fileSize
        }
    }

    query testQuery($runId: String!) {
        file: mlflowListArtifacts(input: { runId: $runId }) {
            rootUri
            ...FilesFragment
        }
        subdir: mlflowListArtifacts(input: { runId: $runId, path: "testDir" }) {
            ...FilesFragment
        }
    }
"""

SEARCH_MODEL_VERSIONS = """
    query SearchModelVersions($input: MlflowSearchModelVersionsInput){
      mlflowSearchModelVersions(input: $input){
        modelVersions { name version runId creationTimestamp currentStage status source tags { key value } aliases }
        nextPageToken
      }
    }
"""

SEARCH_DATASETS = """
    mutation testMutation($experimentIds: [String]) {
        mlflowSearchDatasets(input: {experimentIds: $experimentIds}) {
            datasetSummaries {
                experimentId
                name
                digest
                context
            }
        }
    }
"""

SEARCH_RUNS_MUTATION = """
    mutation testMutation($input: MlflowSearchRunsInput) {
        mlflowSearchRuns(input: $input) {
            runs { info { runId status endTime } }
            nextPageToken
        }
    }
"""

# int64 fields: strings in GraphQL
LONG_FIELDS = {"start_time", "end_time", "timestamp", "step", "creation_time", "last_update_time", "creation_timestamp",
               "last_updated_timestamp", "file_size"}


# --- helpers ---------------------------------------------------------------------------------------------------


def graphql(api: Api, query: str, variables: dict | None = None, *, path: str = "/graphql", **headers) -> dict:
    response = api.request("POST", path, {"query": query, "variables": variables}, **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"data", "errors"}, body
    return body


def ok(body: dict) -> dict:
    assert body["errors"] is None, body["errors"]
    return body["data"]


def assert_same(answer, rest, *, defaults: dict, at: str = "") -> None:
    """The GraphQL answer is the REST answer in GraphQL's spelling (camelCase, int64 as strings, NaN as null),
    for every field the query selected; a selected field the REST answer omits (unset in protobuf) carries
    exactly the default listed for its path in `defaults` ("info.endTime": "0")."""
    if isinstance(answer, dict):
        assert isinstance(rest, dict), (at, answer, rest)
        snake = {camel_case(key): key for key in rest}
        for key, value in answer.items():
            where = f"{at}.{key}".lstrip(".")
            if key == "__typename":
                continue
            if key in snake:
                assert_same(value, rest[snake[key]], defaults=defaults, at=where)
            else:
                generic = re.sub(r"\[\d+\]", "[]", where)
                assert generic in defaults, f"{where} is not in the REST answer and has no expected default"
                assert value == defaults[generic], (where, value)
    elif isinstance(answer, list):
        assert isinstance(rest, list) and len(answer) == len(rest), (at, answer, rest)
        for i, (item, rest_item) in enumerate(zip(answer, rest)):
            assert_same(item, rest_item, defaults=defaults, at=f"{at}[{i}]")
    else:
        field = re.sub(r"^.*\.", "", at)
        expected = rest
        if camel_to_snake(field) in LONG_FIELDS:
            expected = str(rest)
        elif field == "value" and rest == "NaN":
            expected = None
        assert answer == expected, (at, answer, rest)


def camel_to_snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def rest_get(api: Api, rpc: str, path: str, params: dict, **headers) -> dict:
    response = api.client.get(path, params, **headers)
    assert response.status_code == 200, (rpc, response.content)
    return response.json()


@pytest.fixture
def logged_run(api, experiment_id, run_id):
    """A run with what the run page shows: tags, params, metrics (one NaN), a dataset input with a context tag,
    a logged model as input and as output, and two registered versions; plus its experiment's tags."""
    api.call("SetExperimentTag", "POST", f"{API}/experiments/set-experiment-tag",
             {"experiment_id": experiment_id, "key": "team", "value": "wine"})
    metrics = [{"key": "loss", "value": 1.0 / (step + 1), "timestamp": 1000 + step, "step": step} for step in range(50)]
    metrics.append({"key": "nan", "value": "NaN", "timestamp": 2000, "step": 3})
    api.call("LogBatch", "POST", f"{API}/runs/log-batch", {
        "run_id": run_id, "metrics": metrics, "params": [{"key": "alpha", "value": "0.5"}],
        "tags": [{"key": "note", "value": "first"}]})
    model_id = api.call("CreateLoggedModel", "POST", f"{API}/logged-models",
                        {"experiment_id": experiment_id, "name": "lm", "source_run_id": run_id})["model"]["info"]["model_id"]
    api.call("LogInputs", "POST", f"{API}/runs/log-inputs", {"run_id": run_id, "models": [{"model_id": model_id}], "datasets": [
        {"tags": [{"key": "mlflow.data.context", "value": "training"}],
         "dataset": {"name": "wine-data", "digest": "d1", "source_type": "code", "source": "{}", "schema": "{\"s\": 1}"}}]})
    api.call("LogOutputs", "POST", f"{API}/runs/outputs", {"run_id": run_id, "models": [{"model_id": model_id, "step": 7}]})
    for name in ("model-a", "model-b"):
        api.call("CreateRegisteredModel", "POST", f"{API}/registered-models/create", {"name": name})
        api.call("CreateModelVersion", "POST", f"{API}/model-versions/create",
                 {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id})
    return run_id


RUN_DEFAULTS = {
    "info.endTime": "0",  # a running run: MLflow's GraphQL reads the unset end_time as 0
    "inputs.datasetInputs[].dataset.profile": "",
}


# --- the UI's queries ------------------------------------------------------------------------------------------


def test_the_ui_sends_these_queries():
    """The fixtures above are the queries of the UI bundle of the installed MLflow, character for character."""
    import mlflow

    bundle = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    sources = "".join(path.read_text(encoding="utf-8") for path in bundle.glob("*.js"))
    sent = {match.group(2): sources[match.start() + 1: sources.index("`", match.start() + 1)]
            for match in re.finditer(r"`\s*(query|mutation) (\w+)", sources)}
    assert sent == UI_QUERIES


def test_get_run_answers_as_rest(api, logged_run, experiment_id):
    data = ok(graphql(api, GET_RUN, {"data": {"runId": logged_run}}))["mlflowGetRun"]
    rest_run = rest_get(api, "GetRun", f"{API}/runs/get", {"run_id": logged_run})["run"]
    assert data["apiError"] is None
    run = data["run"]
    assert_same({k: v for k, v in run.items() if k not in {"experiment", "modelVersions"}}, rest_run,
                defaults=RUN_DEFAULTS)
    assert run["info"]["status"] == "RUNNING" and run["info"]["endTime"] == "0"
    assert {"key": "nan", "value": None, "step": "3", "timestamp": "2000"} in run["data"]["metrics"]
    assert run["outputs"]["modelOutputs"][0]["step"] == "7"
    rest_experiment = rest_get(api, "GetExperiment", f"{API}/experiments/get", {"experiment_id": experiment_id})
    assert_same(run["experiment"], rest_experiment["experiment"], defaults={})
    rest_versions = api.call("SearchModelVersions", "POST", f"{API}/model-versions/search",
                             {"filter": f"run_id = '{logged_run}'"})["model_versions"]
    assert_same(run["modelVersions"], rest_versions, defaults={})
    assert sorted(v["name"] for v in run["modelVersions"]) == ["model-a", "model-b"]


def test_search_runs_answers_as_rest(api, logged_run, experiment_id):
    other = api.call("CreateRun", "POST", f"{API}/runs/create", {"experiment_id": experiment_id, "start_time": 5})
    api.call("UpdateRun", "POST", f"{API}/runs/update",
             {"run_id": other["run"]["info"]["run_id"], "status": "FINISHED", "end_time": 9})
    request = {"experimentIds": [experiment_id], "filter": "", "orderBy": ["attributes.start_time DESC"],
               "runViewType": "ACTIVE_ONLY", "maxResults": 10}
    data = ok(graphql(api, SEARCH_RUNS, {"data": request}))["mlflowSearchRuns"]
    rest = api.call("SearchRuns", "POST", f"{API}/runs/search", {
        "experiment_ids": [experiment_id], "order_by": ["attributes.start_time DESC"], "max_results": 10})["runs"]
    assert [run["info"]["runUuid"] for run in data["runs"]] == [run["info"]["run_id"] for run in rest]
    assert_same([{k: v for k, v in run.items() if k not in {"experiment", "modelVersions"}} for run in data["runs"]],
                rest, defaults={**{f"[].{path}": value for path, value in RUN_DEFAULTS.items()},
                                "[].data.params": [], "[].data.metrics": [], "[].inputs.datasetInputs": [],
                                "[].inputs.modelInputs": [], "[].outputs.modelOutputs": []})
    assert data["runs"][1]["info"]["endTime"] == "9"
    assert [run["experiment"]["experimentId"] for run in data["runs"]] == [experiment_id, experiment_id]
    assert sorted(v["name"] for v in data["runs"][0]["modelVersions"]) == ["model-a", "model-b"]
    assert data["runs"][1]["modelVersions"] == []


def test_search_runs_mutation_pages_and_view_types(api, experiment_id):
    ids = [api.call("CreateRun", "POST", f"{API}/runs/create", {"experiment_id": experiment_id, "start_time": t})
           ["run"]["info"]["run_id"] for t in (1, 2, 3)]
    api.call("DeleteRun", "POST", f"{API}/runs/delete", {"run_id": ids[0]})
    first = ok(graphql(api, SEARCH_RUNS_MUTATION, {"input": {"experimentIds": [experiment_id], "maxResults": 1}}))
    page = first["mlflowSearchRuns"]
    assert [run["info"]["runId"] for run in page["runs"]] == [ids[2]]
    rest = api.call("SearchRuns", "POST", f"{API}/runs/search", {"experiment_ids": [experiment_id], "max_results": 1})
    assert page["nextPageToken"] == rest["next_page_token"]
    second = ok(graphql(api, SEARCH_RUNS_MUTATION, {"input": {"experimentIds": [experiment_id], "maxResults": 1,
                                                              "pageToken": page["nextPageToken"]}}))
    assert [run["info"]["runId"] for run in second["mlflowSearchRuns"]["runs"]] == [ids[1]]
    deleted = ok(graphql(api, SEARCH_RUNS_MUTATION, {"input": {"experimentIds": [experiment_id], "runViewType": "ALL"}}))
    assert [run["info"]["runId"] for run in deleted["mlflowSearchRuns"]["runs"]] == ids[::-1]
    assert deleted["mlflowSearchRuns"]["nextPageToken"] == ""  # unset: protobuf's empty string
    # an enum written in the query, as MLflow's own test writes it
    inline = ok(graphql(api, 'mutation { mlflowSearchRuns(input: {experimentIds: ["%s"], runViewType: DELETED_ONLY}) '
                             '{ runs { info { runId } } } }' % experiment_id))
    assert [run["info"]["runId"] for run in inline["mlflowSearchRuns"]["runs"]] == [ids[0]]
    assert ok(graphql(api, SEARCH_RUNS_MUTATION, {"input": {}}))["mlflowSearchRuns"] == {"runs": [], "nextPageToken": ""}


def test_get_experiment_answers_as_rest(api, experiment_id):
    api.call("SetExperimentTag", "POST", f"{API}/experiments/set-experiment-tag",
             {"experiment_id": experiment_id, "key": "k", "value": "v"})
    data = ok(graphql(api, GET_EXPERIMENT, {"input": {"experimentId": experiment_id}}))["mlflowGetExperiment"]
    rest = rest_get(api, "GetExperiment", f"{API}/experiments/get", {"experiment_id": experiment_id})["experiment"]
    assert data["apiError"] is None
    assert_same(data["experiment"], rest, defaults={"effectiveTraceArchivalRetention": ""})
    assert data["experiment"]["tags"] == [{"key": "k", "value": "v"}]
    assert data["experiment"]["creationTime"] == str(rest["creation_time"])


def test_metric_history_bulk_interval_answers_as_rest(api, logged_run):
    for key, max_results in (("loss", 10), ("loss", None), ("nan", None)):
        request = {"runIds": [logged_run], "metricKey": key}
        params = {"run_ids": logged_run, "metric_key": key}
        if max_results:
            request["maxResults"], params["max_results"] = max_results, max_results
        data = ok(graphql(api, GET_METRIC_HISTORY_BULK_INTERVAL, {"data": request}))["mlflowGetMetricHistoryBulkInterval"]
        rest = rest_get(api, "GetMetricHistoryBulkInterval", f"{AJAX}/metrics/get-history-bulk-interval", params)
        assert data["__typename"] == "MlflowGetMetricHistoryBulkIntervalResponse"
        assert_same(data["metrics"], rest["metrics"], defaults={})
        assert len(data["metrics"]) == (10 if max_results else 1 if key == "nan" else 50)
    # MLflow 3.17 adds "Float cannot represent non numeric value: nan" to `errors` here; null alone is the intent
    assert data["metrics"][0]["value"] is None


def test_list_artifacts_answers_as_rest(api, logged_run, local_store):
    run = rest_get(api, "GetRun", f"{API}/runs/get", {"run_id": logged_run})["run"]
    store_path = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    for name, content in (("test.txt", b"hello world"), ("testDir/test.txt", b"hello world")):
        response = api.request("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{store_path}/{name}", content,
                               content_type="application/octet-stream")
        assert response.status_code == 200
    data = ok(graphql(api, LIST_ARTIFACTS, {"runId": logged_run}))
    top = rest_get(api, "ListRunArtifacts", f"{API}/artifacts/list", {"run_id": logged_run})
    sub = rest_get(api, "ListRunArtifacts", f"{API}/artifacts/list", {"run_id": logged_run, "path": "testDir"})
    assert_same(data["file"], top, defaults={"files[].fileSize": "0"})  # a directory has no size: protobuf's 0
    assert_same(data["subdir"], sub, defaults={})
    assert data["file"]["files"] == [{"path": "test.txt", "isDir": False, "fileSize": "11"},
                                     {"path": "testDir", "isDir": True, "fileSize": "0"}]
    assert data["subdir"]["files"] == [{"path": "testDir/test.txt", "isDir": False, "fileSize": "11"}]


def test_search_model_versions_answers_as_rest(api, logged_run):
    api.call("SetModelVersionTag", "POST", f"{API}/model-versions/set-tag",
             {"name": "model-a", "version": "1", "key": "k", "value": "v"})
    for request in ({}, {"filter": "name = 'model-a'"}, {"maxResults": "1"}, {"maxResults": 1, "orderBy": ["name DESC"]}):
        data = ok(graphql(api, SEARCH_MODEL_VERSIONS, {"input": request}))["mlflowSearchModelVersions"]
        rest = api.call("SearchModelVersions", "POST", f"{API}/model-versions/search",
                        {camel_to_snake(k): v for k, v in request.items()})
        assert_same(data, rest, defaults={"nextPageToken": "", "modelVersions[].tags": [],
                                          "modelVersions[].aliases": []})
    assert [v["name"] for v in data["modelVersions"]] == ["model-b"]


def test_search_datasets_answers_as_rest(api, logged_run, experiment_id):
    data = ok(graphql(api, SEARCH_DATASETS, {"experimentIds": [experiment_id]}))["mlflowSearchDatasets"]
    rest = api.call("SearchDatasets", "POST", f"{AJAX}/experiments/search-datasets", {"experiment_ids": [experiment_id]})
    assert_same(data, rest, defaults={})
    assert data["datasetSummaries"] == [
        {"experimentId": experiment_id, "name": "wine-data", "digest": "d1", "context": "training"}]


def test_echo_fields(api):
    assert ok(graphql(api, 'query { test(inputString: "hello") { output } }')) == {"test": {"output": "hello"}}
    assert ok(graphql(api, 'mutation { testMutation(inputString: "hi") { output } }')) == {"testMutation": {"output": "hi"}}


def test_get_reads_the_query_string_or_a_json_body(api, run_id):
    response = api.client.get("/graphql", {"query": "query Q($d: MlflowGetRunInput!) { mlflowGetRun(input: $d) "
                                                    "{ run { info { runId } } } }",
                                           "variables": json.dumps({"d": {"runId": run_id}}), "operationName": "Q"})
    assert response.status_code == 200
    assert response.json() == {"data": {"mlflowGetRun": {"run": {"info": {"runId": run_id}}}}, "errors": None}
    # MLflow's server reads the JSON body of a GET
    response = api.client.generic("GET", "/graphql", json.dumps({"query": '{ test(inputString: "x") { output } }'}),
                                  content_type="application/json")
    assert response.json() == {"data": {"test": {"output": "x"}}, "errors": None}


def test_no_csrf_token_is_needed(db):
    """The UI posts JSON without a CSRF token, as to every API route here."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post("/graphql", {"query": 'query { test(inputString: "x") { output } }'},
                           content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json() == {"data": {"test": {"output": "x"}}, "errors": None}


def test_project_view_serves_graphql(api, run_id, experiment_id):
    """Open mode: a project view searches its own project only; the run here belongs to none."""
    for view in (WINE, None):
        base = view_prefix(view)
        body = graphql(api, SEARCH_RUNS_MUTATION, {"input": {"experimentIds": [experiment_id]}}, path=f"{base}/graphql")
        rest = api.call("SearchRuns", "POST", f"{base}{API}/runs/search", {"experiment_ids": [experiment_id]})
        assert run_ids(ok(body)["mlflowSearchRuns"]["runs"]) == run_ids(rest.get("runs", []))
        assert len(rest.get("runs", [])) == (0 if view else 1)
        body = graphql(api, GET_RUN, {"data": {"runId": run_id}}, path=f"{base}/graphql")
        assert ok(body)["mlflowGetRun"]["run"]["info"]["runUuid"] == run_id


# --- errors ----------------------------------------------------------------------------------------------------


def test_missing_objects_are_field_errors_with_mlflow_messages(api, run_id):
    cases = [
        (GET_RUN, {"data": {"runId": "f" * 32}}, "mlflowGetRun", f"{API}/runs/get", {"run_id": "f" * 32}),
        (GET_EXPERIMENT, {"input": {"experimentId": "987654"}}, "mlflowGetExperiment",
         f"{API}/experiments/get", {"experiment_id": "987654"}),
        (GET_EXPERIMENT, {"input": {"experimentId": "abc"}}, "mlflowGetExperiment",
         f"{API}/experiments/get", {"experiment_id": "abc"}),
        (GET_RUN, {"data": {}}, "mlflowGetRun", f"{API}/runs/get", {}),
        (LIST_ARTIFACTS, {"runId": "0" * 32}, "file", f"{API}/artifacts/list", {"run_id": "0" * 32}),
    ]
    for query, variables, field, rest_path, params in cases:
        with rolled_back():  # the REST error marks the surrounding transaction for rollback
            rest = api.client.get(rest_path, params)
        assert rest.status_code in (400, 404)
        body = graphql(api, query, variables)
        assert body["data"] is None or body["data"][field] is None, body
        assert rest.json()["message"] in body["errors"], (body, rest.json())
    with rolled_back():
        rest = api.request("POST", f"{AJAX}/experiments/search-datasets", {"experiment_ids": []})
    body = graphql(api, SEARCH_DATASETS, {"experimentIds": []})
    assert body == {"data": {"mlflowSearchDatasets": None}, "errors": [rest.json()["message"]]}
    with rolled_back():
        rest = api.request("POST", f"{API}/model-versions/search", {"filter": "bad bad"})
    body = graphql(api, SEARCH_MODEL_VERSIONS, {"input": {"filter": "bad bad"}})
    assert body == {"data": {"mlflowSearchModelVersions": None}, "errors": [rest.json()["message"]]}


def test_one_failing_field_leaves_the_others(api, run_id):
    body = graphql(api, "query { a: mlflowGetRun(input: {runId: \"%s\"}) { run { info { runId } } } "
                        "b: mlflowGetRun(input: {runId: \"nope\"}) { run { info { runId } } } }" % run_id)
    assert body == {"data": {"a": {"run": {"info": {"runId": run_id}}}, "b": None},
                    "errors": ["Run with id=nope not found"]}


@pytest.mark.parametrize(("query", "message"), [
    ("query { test(", "Syntax Error: Expected Name, found <EOF>."),
    ("query { nope }", "Cannot query field 'nope' on type 'Query'."),
    ("query { mlflowGetRun(input: {runId: 1}) { run { info { runId } } } }", "String cannot represent a non string value: 1"),
    ('query { test(inputString: "x") { output } } query { test(inputString: "y") { output } }',
     "This anonymous operation must be the only defined operation."),
    ("fragment A on Query { ...B } fragment B on Query { ...A } query { ...A }", "Cannot spread fragment 'A' within itself via 'B'."),
])
def test_invalid_queries_are_graphql_errors(api, query, message):
    body = graphql(api, query)
    assert body["data"] is None and message in body["errors"], body


def test_bad_requests_are_mlflow_errors(api):
    cases = [
        (lambda: api.request("POST", "/graphql", {"query": "{ test { output } }"}, content_type="text/plain"),
         400, "Bad Request. Content-Type must be one of ['application/json']."),
        (lambda: api.request("POST", "/graphql", {}), 400, "Missing value for required parameter 'query'."),
        (lambda: api.request("POST", "/graphql", "{nope"), 400, "Malformed JSON in the request body."),
        (lambda: api.request("POST", "/graphql", {"query": "{ test { output } }", "variables": [1]}), 400,
         "The 'variables' field must be a JSON object."),
        (lambda: api.client.get("/graphql", {"query": "{ test { output } }", "variables": "{nope"}), 400,
         "The 'variables' parameter must be a JSON object."),
        (lambda: api.request("PUT", "/graphql", {"query": "{ test { output } }"}), 405, 'Method "PUT" not allowed.'),
    ]
    for send, status, message in cases:
        with rolled_back():
            response = send()
        assert response.status_code == status, response.content
        assert response.json()["message"].startswith(message), response.json()


# --- query-safety limits -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "message"), [
    ("query { " + " ".join(f'a{i}: test(inputString: "x") {{ output }}' for i in range(11)) + " }",
     "GraphQL queries should have at most 10 root fields, got 11 root fields. To increase the limit, set the "
     "MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS environment variable."),
    ('query { test(inputString: "x") { ' + " ".join(f"o{i}: output" for i in range(11)) + " } }",
     "GraphQL queries should have at most 10 aliases, got 11 aliases. To increase the limit, set the "
     "MLFLOW_SERVER_GRAPHQL_MAX_ALIASES environment variable."),
    # aliases spread over several fragments of one selection set add up
    ("fragment F on Test { " + " ".join(f"f{i}: output" for i in range(6)) + " } "
     "fragment G on Test { " + " ".join(f"g{i}: output" for i in range(6)) + " } "
     'query { test(inputString: "x") { ...F ...G } }',
     "GraphQL queries should have at most 10 aliases, got 12 aliases. To increase the limit, set the "
     "MLFLOW_SERVER_GRAPHQL_MAX_ALIASES environment variable."),
    ("query { mlflowGetRun(input: {}) { run { data { metrics { key } } experiment { tags { key } } "
     "inputs { datasetInputs { dataset { name } tags { key } } } } } }", None),  # depth 5: fine
    ("query { test(inputString: \"x\") { " + " ".join(["output"] * 1000) + " } }",
     "Query exceeds maximum total selections of 1000"),
    # fragments count where they are spread: 3 x 400 fields
    ("fragment F on Test { " + " ".join(["output"] * 400) + " } "
     'query { a: test(inputString: "x") { ...F } b: test(inputString: "x") { ...F } c: test(inputString: "x") { ...F } }',
     "Query exceeds maximum total selections of 1000"),
])
def test_query_limits(api, query, message):
    body = graphql(api, query)
    if message is None:
        assert not any("exceeds" in error or "at most" in error for error in body["errors"] or []), body
    else:
        assert body == {"data": None, "errors": [message]}


def introspection(depth: int) -> str:
    """A valid query whose innermost selection set is `depth` levels down (the root's is level 1)."""
    inner = "name"
    for _ in range(depth - 5):
        inner = f"ofType {{ {inner} }}"
    return "query { __schema { types { fields { type { %s } } } } }" % inner


def test_depth_counts_fields_not_fragments(api):
    assert graphql(api, introspection(10))["errors"] is None
    assert graphql(api, introspection(11)) == {"data": None, "errors": ["Query exceeds maximum depth of 10"]}
    inline = "output"
    for _ in range(20):
        inline = f"... on Test {{ {inline} }}"
    assert graphql(api, 'query { test(inputString: "x") { %s } }' % inline) == {"data": {"test": {"output": "x"}},
                                                                                 "errors": None}


def test_limits_follow_the_settings(api, settings):
    settings.MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS = 2
    three = 'query { a: test(inputString: "x") { output } b: test(inputString: "x") { output } c: test(inputString: "x") { output } }'
    assert graphql(api, three)["errors"][0].startswith("GraphQL queries should have at most 2 root fields, got 3")
    settings.MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS = 3
    assert graphql(api, three)["errors"] is None


def test_a_huge_document_stops_at_the_token_limit(api):
    body = graphql(api, "query { " + "test { output } " * 5000 + "}")
    assert body["data"] is None
    assert body["errors"] == ["Syntax Error: Document contains more than 10000 tokens. Parsing aborted."]


# --- SQL queries per request --------------------------------------------------------------------------------------


@pytest.mark.parametrize("runs", [2, 20])
def test_search_runs_query_count_is_flat(api, experiment_id, runs, django_assert_max_num_queries):
    for i in range(runs):
        run_id = api.call("CreateRun", "POST", f"{API}/runs/create", {"experiment_id": experiment_id, "start_time": i})["run"]["info"]["run_id"]
        api.call("LogBatch", "POST", f"{API}/runs/log-batch", {"run_id": run_id, "params": [{"key": "p", "value": "1"}],
                                                              "metrics": [{"key": "m", "value": 1, "timestamp": 1}]})
        api.call("CreateRegisteredModel", "POST", f"{API}/registered-models/create", {"name": f"m{i}"})
        api.call("CreateModelVersion", "POST", f"{API}/model-versions/create",
                 {"name": f"m{i}", "source": f"runs:/{run_id}/model", "run_id": run_id})
    with django_assert_max_num_queries(11):  # as for 2 runs: experiments and versions are read once per page
        data = ok(graphql(api, SEARCH_RUNS, {"data": {"experimentIds": [experiment_id]}}))
    assert len(data["mlflowSearchRuns"]["runs"]) == runs
    assert all(len(run["modelVersions"]) == 1 for run in data["mlflowSearchRuns"]["runs"])


def test_get_run_query_count(api, logged_run, django_assert_max_num_queries):
    with django_assert_max_num_queries(11):  # the REST GetRun costs 8; its experiment and versions 3 more
        ok(graphql(api, GET_RUN, {"data": {"runId": logged_run}}))


# --- permissions: each field answers as its REST route does, for the same caller in the same view -----------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, sharinghub_server):
    """Two projects and untagged data (tests/permissions/worlds.py), plus a version of beer's registered model
    made from wine's run: a run's modelVersions must not show it to who may not read beer."""
    with django_db_blocker.unblock(), rolled_back():
        api = Api()
        built = build_world(api)
        from django.test import override_settings

        with override_settings(PERMISSION_MODE="open"):
            response = api.request("POST", f"{API}/model-versions/create", {
                "name": built.beer.model_name, "source": f"runs:/{built.wine.run_id}/model", "run_id": built.wine.run_id})
            assert response.status_code == 200, response.content
        from tests.doubles.sharinghub import SharingHubState

        sharinghub_server.state = SharingHubState()
        for project, project_id in PROJECT_IDS.items():
            sharinghub_server.add_project(project, project_id)
        tokens = {}
        for caller, levels in CALLERS.items():
            tokens[caller] = sharinghub_server.token(user=f"graphql-{caller}")
            for project, level in levels.items():
                sharinghub_server.set_access(tokens[caller], project, level)
        with sharinghub_mode(sharinghub_server):
            yield built, tokens, api


@pytest.fixture
def permission_world(world, django_db_blocker):
    with django_db_blocker.unblock():
        yield world


CALLERS = {"nobody": {WINE: 0}, "reporter": {WINE: 2}, "maintainer": {WINE: 4}, "both": {WINE: 4, BEER: 4}}
VIEWS = [WINE, None, BEER]
API_CLIENT = {"HTTP_USER_AGENT": "mlflow-python-client/3.17.2"}  # answered 401 as text, not a login page


def headers_of(tokens, caller):
    return {**API_CLIENT, **(bearer(tokens[caller]) if caller != "anonymous" else {})}


def same_answer(api, view, headers, *, rest, graphql_query, variables, field, rest_items, graphql_items):
    """The GraphQL field answers what the REST route answers: the same items, or the same refusal."""
    rest_response = rest()
    body = graphql(api, graphql_query, variables, path=f"{view_prefix(view)}/graphql", **headers)
    where = (view, headers.get("HTTP_AUTHORIZATION"), rest_response.status_code, body)
    if rest_response.status_code == 200:
        assert body["errors"] is None, where
        assert sorted(graphql_items(body["data"][field])) == sorted(rest_items(rest_response.json())), where
    elif rest_response.status_code == 401:
        assert body == {"data": {field: None}, "errors": [NOT_AUTHENTICATED]}, where
    else:
        assert rest_response.status_code == 403, where
        assert body == {"data": {field: None}, "errors": ["Permission denied."]}, where
    return rest_response.status_code


def calls(tokens):
    for caller in ["anonymous", *CALLERS]:
        for view in VIEWS:
            yield view, headers_of(tokens, caller)


def run_ids(runs):
    """REST spells it run_id; the UI's queries select runUuid, MLflow's tests runId."""
    return [run["info"].get("run_id") or run["info"].get("runUuid") or run["info"].get("runId") for run in runs]


def test_get_run_and_its_model_versions_as_rest(permission_world):
    built, tokens, api = permission_world
    statuses = set()
    for view, headers in calls(tokens):
        for side in (built.wine, built.beer, built.loose):
            base = view_prefix(view)
            statuses.add(same_answer(
                api, view, headers, field="mlflowGetRun", graphql_query=GET_RUN, variables={"data": {"runId": side.run_id}},
                rest=lambda: api.client.get(f"{base}{API}/runs/get", {"run_id": side.run_id}, **headers),
                rest_items=lambda body: [body["run"]["info"]["run_id"]],
                graphql_items=lambda run: [run["run"]["info"]["runUuid"]]))
            # modelVersions: what SearchModelVersions shows this caller for the run, in this view
            rest_versions = api.client.post(f"{base}{API}/model-versions/search", {"filter": f"run_id = '{side.run_id}'"},
                                            content_type="application/json", **headers)
            body = graphql(api, GET_RUN, {"data": {"runId": side.run_id}}, path=f"{base}/graphql", **headers)
            if body["data"]["mlflowGetRun"] is not None:
                shown = {(v["name"], v["version"]) for v in body["data"]["mlflowGetRun"]["run"]["modelVersions"]}
                assert shown == {(v["name"], v["version"]) for v in rest_versions.json().get("model_versions", [])}
                if side is built.wine:
                    assert (built.beer.model_name, "2") in shown or not _may_read_beer(headers, view, tokens)
    assert statuses == {200, 401, 403}


def _may_read_beer(headers, view, tokens):
    return headers.get("HTTP_AUTHORIZATION") == f"Bearer {tokens['both']}" and view in (None, BEER)


def test_searches_are_scoped_as_rest(permission_world):
    built, tokens, api = permission_world
    experiment_ids = [built.wine.experiment_id, built.beer.experiment_id, built.loose.experiment_id]
    for view, headers in calls(tokens):
        base = view_prefix(view)
        same_answer(api, view, headers, field="mlflowSearchRuns", graphql_query=SEARCH_RUNS,
                    variables={"data": {"experimentIds": experiment_ids}},
                    rest=lambda: api.request("POST", f"{base}{API}/runs/search", {"experiment_ids": experiment_ids}, **headers),
                    rest_items=lambda body: run_ids(body.get("runs", [])),
                    graphql_items=lambda answer: run_ids(answer["runs"]))
        same_answer(api, view, headers, field="mlflowSearchModelVersions", graphql_query=SEARCH_MODEL_VERSIONS,
                    variables={"input": {}},
                    rest=lambda: api.request("POST", f"{base}{API}/model-versions/search", {}, **headers),
                    rest_items=lambda body: [(v["name"], v["version"]) for v in body.get("model_versions", [])],
                    graphql_items=lambda answer: [(v["name"], v["version"]) for v in answer["modelVersions"]])


@pytest.mark.parametrize("case", ["experiment", "metrics", "artifacts", "datasets"])
def test_reads_are_refused_as_rest(permission_world, case):
    built, tokens, api = permission_world
    statuses = set()
    for view, headers in calls(tokens):
        base = view_prefix(view)
        for side in (built.wine, built.beer, built.loose):
            if case == "experiment":
                statuses.add(same_answer(
                    api, view, headers, field="mlflowGetExperiment", graphql_query=GET_EXPERIMENT,
                    variables={"input": {"experimentId": side.experiment_id}},
                    rest=lambda: api.client.get(f"{base}{API}/experiments/get", {"experiment_id": side.experiment_id}, **headers),
                    rest_items=lambda body: [body["experiment"]["name"]],
                    graphql_items=lambda answer: [answer["experiment"]["name"]]))
            elif case == "metrics":
                statuses.add(same_answer(
                    api, view, headers, field="mlflowGetMetricHistoryBulkInterval",
                    graphql_query=GET_METRIC_HISTORY_BULK_INTERVAL, variables={"data": {"runIds": [side.run_id], "metricKey": "m"}},
                    rest=lambda: api.client.get(f"{base}{AJAX}/metrics/get-history-bulk-interval",
                                                {"run_ids": side.run_id, "metric_key": "m"}, **headers),
                    rest_items=lambda body: [(p["run_id"], p["value"]) for p in body["metrics"]],
                    graphql_items=lambda answer: [(p["runId"], p["value"]) for p in answer["metrics"]]))
            elif case == "artifacts":
                statuses.add(same_answer(
                    api, view, headers, field="mlflowListArtifacts",
                    graphql_query="query($runId: String!) { mlflowListArtifacts(input: {runId: $runId}) { files { path } } }",
                    variables={"runId": side.run_id},
                    rest=lambda: api.client.get(f"{base}{API}/artifacts/list", {"run_id": side.run_id}, **headers),
                    rest_items=lambda body: [f["path"] for f in body["files"]],
                    graphql_items=lambda answer: [f["path"] for f in answer["files"]]))
            else:
                statuses.add(same_answer(
                    api, view, headers, field="mlflowSearchDatasets", graphql_query=SEARCH_DATASETS,
                    variables={"experimentIds": [side.experiment_id]},
                    rest=lambda: api.request("POST", f"{base}{AJAX}/experiments/search-datasets",
                                             {"experiment_ids": [side.experiment_id]}, **headers),
                    rest_items=lambda body: [d["name"] for d in body["dataset_summaries"]],
                    graphql_items=lambda answer: [d["name"] for d in answer["datasetSummaries"]]))
    assert statuses == {200, 401, 403}


def test_public_fields_need_no_credential(permission_world):
    _, _, api = permission_world
    for view in (WINE, None):
        body = graphql(api, 'query { test(inputString: "x") { output } }', path=f"{view_prefix(view)}/graphql", **API_CLIENT)
        assert body == {"data": {"test": {"output": "x"}}, "errors": None}


def test_a_permission_service_outage_is_a_field_error(permission_world, sharinghub_server):
    built, _, api = permission_world
    token = sharinghub_server.token(user="graphql-fresh", project=WINE, level=4)  # nothing cached for it
    sharinghub_server.fail(503)
    try:
        body = graphql(api, GET_RUN, {"data": {"runId": built.wine.run_id}}, **bearer(token))
    finally:
        sharinghub_server.reset_faults()
    assert body["data"] == {"mlflowGetRun": None}
    assert body["errors"][0].startswith("The permission service is unavailable"), body


def test_permission_checks_keep_a_flat_query_count(permission_world, django_assert_max_num_queries):
    built, tokens, api = permission_world
    experiment_ids = [built.wine.experiment_id, built.beer.experiment_id]
    graphql(api, SEARCH_RUNS, {"data": {"experimentIds": experiment_ids}}, **bearer(tokens["both"]))  # warms the cache
    with django_assert_max_num_queries(14):  # + owning experiments' projects, once per search
        body = graphql(api, SEARCH_RUNS, {"data": {"experimentIds": experiment_ids}}, **bearer(tokens["both"]))
    assert len(body["data"]["mlflowSearchRuns"]["runs"]) == 2
