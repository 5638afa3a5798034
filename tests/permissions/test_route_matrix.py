"""The permission matrix, driven by the route table: every RPC at every prefix, sent as raw HTTP with a
Bearer token, for callers with access levels 0-4 on the project team/wine (and one caller who may also
work on other/beer), in the project view, the global view and a foreign project view, against the
resources of team/wine, of other/beer and untagged ones.

The expected answer comes from EXPECTED (the contract, sharinghub.md §5.1/§5.5), never from the rule a
route declares; a separate test checks that the declared rules agree with EXPECTED, so a wrong rule fails.
403 must happen exactly when the contract denies; when it allows, any other status is fine (a 400 for an
incomplete example body, a 501 for multipart on a local store, ...).
"""

import contextlib

import pytest

from mlflow_sh.rules import Check
from mlflow_sh.urls import ALL_RPCS
from tests.conftest import Api
from tests.permissions.worlds import (
    BEER, PROJECT_IDS, WINE, World, bearer, body_json, build_world, rolled_back, sharinghub_mode, view_prefix,
)

pytestmark = pytest.mark.django_db  # each test in a savepoint of the module's world, itself rolled back

# --- the contract: action and resource per RPC (sharinghub.md §5.5) ---------------------------------------
# (action, checks as (action, resource, field) in any order, guards); "search" = read, filtered by project
# (never a 403: §5.6 names SearchExperiments, SearchRuns, SearchRegisteredModels, SearchModelVersions, and the
# original filters SearchRuns too); "search-or-read" = logged-model search, where §5.5 says "read" on each
# experiment and §5.6 "return only readable entities": a 403 for an unreadable experiment or a filtered answer
# are both accepted; "public" = no credential needed.
R, U, D = "read", "update", "delete"
EXPECTED: dict[str, tuple[str, set, set]] = {
    "CreateExperiment": ("create", {("create", "project", "name")}, {"default_location:artifact_location"}),
    "GetExperiment": (R, {(R, "experiment", "experiment_id")}, set()),
    "GetExperimentByName": (R, {(R, "experiment_name", "experiment_name")}, set()),
    "SearchExperiments": ("search", {(R, "server", "")}, set()),
    "UpdateExperiment": (U, {(U, "experiment", "experiment_id")}, {"suffix:new_name"}),
    "DeleteExperiment": (D, {(D, "experiment", "experiment_id")}, set()),
    "RestoreExperiment": (D, {(D, "experiment", "experiment_id")}, set()),
    "SetExperimentTag": (U, {(U, "experiment", "experiment_id")}, {"project_tag:key"}),
    "DeleteExperimentTag": (U, {(U, "experiment", "experiment_id")}, {"project_tag:key"}),
    "CreateRun": (U, {(U, "experiment", "experiment_id")}, set()),
    "GetRun": (R, {(R, "run", "run_id")}, set()),
    "UpdateRun": (U, {(U, "run", "run_id")}, set()),
    "DeleteRun": (D, {(D, "run", "run_id")}, set()),
    "RestoreRun": (D, {(D, "run", "run_id")}, set()),
    "SetTag": (U, {(U, "run", "run_id")}, set()),
    "DeleteTag": (U, {(U, "run", "run_id")}, set()),
    "LogMetric": (U, {(U, "run", "run_id")}, set()),
    "LogParam": (U, {(U, "run", "run_id")}, set()),
    "LogBatch": (U, {(U, "run", "run_id")}, set()),
    "LogModel": (U, {(U, "run", "run_id")}, set()),
    "LogInputs": (U, {(U, "run", "run_id")}, set()),
    "LogOutputs": (U, {(U, "run", "run_id")}, set()),
    "SearchRuns": ("search", {(R, "server", "")}, set()),
    "GetMetricHistory": (R, {(R, "run", "run_id")}, set()),
    "GetMetricHistoryBulkInterval": (R, {(R, "run", "run_ids")}, set()),
    "GetMetricHistoryBulk": (R, {(R, "run", "run_id")}, set()),
    "SearchDatasets": (R, {(R, "experiment", "experiment_ids")}, set()),
    "UploadArtifact": (U, {(U, "artifact_path", "artifact_path")}, set()),
    "DownloadArtifact": (R, {(R, "artifact_path", "artifact_path")}, set()),
    "DeleteArtifact": (D, {(D, "artifact_path", "artifact_path")}, set()),
    "ListArtifacts": (R, {(R, "artifact_path", "path")}, set()),
    "CreateMultipartUpload": (U, {(U, "artifact_path", "artifact_path")}, set()),
    "CompleteMultipartUpload": (U, {(U, "artifact_path", "artifact_path")}, set()),
    "AbortMultipartUpload": (U, {(U, "artifact_path", "artifact_path")}, set()),
    "GetPresignedDownloadUrl": (R, {(R, "artifact_path", "artifact_path")}, set()),
    "ListRunArtifacts": (R, {(R, "run", "run_id")}, set()),
    "GetRunArtifact": (R, {(R, "run", "run_id")}, set()),
    "UploadRunArtifact": (U, {(U, "run", "run_uuid")}, set()),
    "CreateLoggedModel": (U, {(U, "experiment", "experiment_id")}, set()),
    "SearchLoggedModels": ("search-or-read", {(R, "experiment", "experiment_ids")}, set()),
    "GetLoggedModel": (R, {(R, "logged_model", "model_id")}, set()),
    "FinalizeLoggedModel": (U, {(U, "logged_model", "model_id")}, set()),
    "DeleteLoggedModel": (D, {(D, "logged_model", "model_id")}, set()),
    "SetLoggedModelTags": (U, {(U, "logged_model", "model_id")}, set()),
    "DeleteLoggedModelTag": (U, {(U, "logged_model", "model_id")}, set()),
    "LogLoggedModelParams": (U, {(U, "logged_model", "model_id")}, set()),
    "ListLoggedModelArtifacts": (R, {(R, "logged_model", "model_id")}, set()),
    "GetLoggedModelArtifact": (R, {(R, "logged_model", "model_id")}, set()),
    "GetServerInfo": ("public", set(), set()),
    "GetUiTelemetry": ("public", set(), set()),
    "PostUiTelemetry": ("public", set(), set()),
    "GatewayProxy": ("public", set(), set()),
    "CreateRegisteredModel": ("create", {("create", "project", "name")}, set()),
    "GetRegisteredModel": (R, {(R, "registered_model", "name")}, set()),
    "RenameRegisteredModel": (U, {(U, "registered_model", "name")}, {"suffix:new_name"}),
    "UpdateRegisteredModel": (U, {(U, "registered_model", "name")}, set()),
    "DeleteRegisteredModel": (D, {(D, "registered_model", "name")}, set()),
    "SearchRegisteredModels": ("search", {(R, "server", "")}, set()),
    "GetLatestVersions": (R, {(R, "registered_model", "name")}, set()),
    "SetRegisteredModelTag": (U, {(U, "registered_model", "name")}, {"project_tag:key"}),
    "DeleteRegisteredModelTag": (U, {(U, "registered_model", "name")}, {"project_tag:key"}),
    # update on the model, and what the version is made from must be readable (same project in a view)
    "CreateModelVersion": (U, {(U, "registered_model", "name"), (R, "run", "run_id"), (R, "logged_model", "model_id"),
                              (R, "model_source", "source")}, set()),
    "GetModelVersion": (R, {(R, "registered_model", "name")}, set()),
    "UpdateModelVersion": (U, {(U, "registered_model", "name")}, set()),
    "TransitionModelVersionStage": (U, {(U, "registered_model", "name")}, set()),
    "DeleteModelVersion": (D, {(D, "registered_model", "name")}, set()),
    "SearchModelVersions": ("search", {(R, "server", "")}, set()),
    "GetModelVersionDownloadUri": (R, {(R, "registered_model", "name")}, set()),
    "SetModelVersionTag": (U, {(U, "registered_model", "name")}, set()),
    "DeleteModelVersionTag": (D, {(D, "registered_model", "name")}, set()),
    "SetRegisteredModelAlias": (U, {(U, "registered_model", "name")}, set()),
    "DeleteRegisteredModelAlias": (D, {(D, "registered_model", "name")}, set()),
    "GetModelVersionByAlias": (R, {(R, "registered_model", "name")}, set()),
    "GetModelVersionArtifact": (R, {(R, "registered_model", "name")}, set()),
}
MINIMUM_LEVEL = {R: 1, U: 3, D: 3, "create": 3}


def _cases():
    for rpc in ALL_RPCS:
        for prefix in rpc.prefixes:
            yield pytest.param(rpc, prefix, id=f"{rpc.method}-{prefix or 'root'}-{rpc.name}")


CASES = list(_cases())


# --- the example request of each RPC, against one side of the world -------------------------------------------


def example(rpc, side) -> tuple[str, dict | bytes | None, str]:
    """(path below the prefix with its parameters, body or query, content type) for this RPC on `side`."""
    e, r, m, v, lm = side.experiment_id, side.run_id, side.model_name, side.version, side.logged_model_id
    art = f"{e}/{r}/artifacts"
    suffix = side.suffix
    bodies = {
        "CreateExperiment": {"name": f"new-exp{suffix}"},
        "GetExperiment": {"experiment_id": e},
        "GetExperimentByName": {"experiment_name": side.experiment_name},
        "SearchExperiments": {"max_results": 100},
        "UpdateExperiment": {"experiment_id": e, "new_name": f"renamed-exp{suffix}"},
        "DeleteExperiment": {"experiment_id": e},
        "RestoreExperiment": {"experiment_id": e},
        "SetExperimentTag": {"experiment_id": e, "key": "k2", "value": "v"},
        "DeleteExperimentTag": {"experiment_id": e, "key": "k"},
        "CreateRun": {"experiment_id": e, "start_time": 1},
        "GetRun": {"run_id": r},
        "UpdateRun": {"run_id": r, "status": "FINISHED", "end_time": 2000},
        "DeleteRun": {"run_id": r},
        "RestoreRun": {"run_id": r},
        "SetTag": {"run_id": r, "key": "t2", "value": "v"},
        "DeleteTag": {"run_id": r, "key": "t"},
        "LogMetric": {"run_id": r, "key": "m", "value": 2.0, "timestamp": 2000, "step": 1},
        "LogParam": {"run_id": r, "key": "p2", "value": "2"},
        "LogBatch": {"run_id": r, "metrics": [{"key": "m", "value": 3.0, "timestamp": 3000, "step": 2}]},
        "LogModel": {"run_id": r, "model_json": '{"artifact_path": "model", "flavors": {}, "run_id": "%s", '
                                                '"utc_time_created": "2024-01-01 00:00:00.000000"}' % r},
        "LogInputs": {"run_id": r, "datasets": [{"tags": [], "dataset": {"name": "d2", "digest": "x", "source_type": "code",
                                                                          "source": "{}"}}]},
        "LogOutputs": {"run_id": r, "models": [{"model_id": lm, "step": 0}]},
        "SearchRuns": {"experiment_ids": [e]},
        "GetMetricHistory": {"run_id": r, "metric_key": "m"},
        "GetMetricHistoryBulkInterval": {"run_ids": [r], "metric_key": "m"},
        "GetMetricHistoryBulk": {"run_id": [r], "metric_key": "m"},
        "SearchDatasets": {"experiment_ids": [e]},
        "ListArtifacts": {"path": art},
        "CreateMultipartUpload": {"path": "big.bin", "num_parts": 1},
        "CompleteMultipartUpload": {"path": "big.bin", "upload_id": "u", "parts": []},
        "AbortMultipartUpload": {"path": "big.bin", "upload_id": "u"},
        "ListRunArtifacts": {"run_id": r},
        "GetRunArtifact": {"run_id": r, "path": "file.txt"},
        "CreateLoggedModel": {"experiment_id": e, "name": "lm2"},
        "SearchLoggedModels": {"experiment_ids": [e]},
        "FinalizeLoggedModel": {"status": "LOGGED_MODEL_READY"},
        "SetLoggedModelTags": {"tags": [{"key": "a2", "value": "b"}]},
        "LogLoggedModelParams": {"params": [{"key": "a", "value": "b"}]},
        "ListLoggedModelArtifacts": {},
        "GetLoggedModelArtifact": {"artifact_file_path": "x"},
        "CreateRegisteredModel": {"name": f"new-model{suffix}"},
        "GetRegisteredModel": {"name": m},
        "RenameRegisteredModel": {"name": m, "new_name": f"renamed-model{suffix}"},
        "UpdateRegisteredModel": {"name": m, "description": "d"},
        "DeleteRegisteredModel": {"name": m},
        "SearchRegisteredModels": {"max_results": 100},
        "GetLatestVersions": {"name": m},
        "SetRegisteredModelTag": {"name": m, "key": "k2", "value": "v"},
        "DeleteRegisteredModelTag": {"name": m, "key": "k"},
        "CreateModelVersion": {"name": m, "source": f"runs:/{r}/model", "run_id": r},
        "GetModelVersion": {"name": m, "version": v},
        "UpdateModelVersion": {"name": m, "version": v, "description": "d"},
        "TransitionModelVersionStage": {"name": m, "version": v, "stage": "Staging"},
        "DeleteModelVersion": {"name": m, "version": v},
        "SearchModelVersions": {"max_results": 100},
        "GetModelVersionDownloadUri": {"name": m, "version": v},
        "SetModelVersionTag": {"name": m, "version": v, "key": "k2", "value": "v"},
        "DeleteModelVersionTag": {"name": m, "version": v, "key": "k"},
        "SetRegisteredModelAlias": {"name": m, "alias": "other", "version": v},
        "DeleteRegisteredModelAlias": {"name": m, "alias": side.alias},
        "GetModelVersionByAlias": {"name": m, "alias": side.alias},
        "GetModelVersionArtifact": {"name": m, "version": v, "path": "MLmodel"},
    }
    path = rpc.path
    path = path.replace("<str:model_id>", lm).replace("<path:tag_key>", "a")
    artifact_targets = {"UploadArtifact": f"{art}/upload.txt", "DownloadArtifact": f"{art}/file.txt",
                        "DeleteArtifact": f"{art}/scratch.txt", "GetPresignedDownloadUrl": f"{art}/file.txt"}
    path = path.replace("<path:artifact_path>", artifact_targets.get(rpc.name, art))
    if rpc.name in {"UploadArtifact", "UploadRunArtifact"}:
        query = "" if rpc.name == "UploadArtifact" else f"?run_uuid={r}&path=up.txt"
        return path + query, b"data", "application/octet-stream"
    body = bodies.get(rpc.name, {})
    return path, body, "application/json"


def send(api: Api, rpc, prefix: str, side, view: str | None, headers: dict):
    path, body, content_type = example(rpc, side)
    url = f"{view_prefix(view)}/{prefix}/{path}" if prefix else f"{view_prefix(view)}/{path}"
    if rpc.method == "GET":
        return api.client.get(url, body or {}, **headers)
    if isinstance(body, bytes):
        return api.client.generic(rpc.method, url, body, content_type=content_type, **headers)
    return api.request(rpc.method, url, body, **headers)


# --- who calls, from where, on what -----------------------------------------------------------------------------

# caller name -> access level per project (0: the checker answers 404)
CALLERS = {f"level{n}": {WINE: n} for n in range(5)} | {"both4": {WINE: 4, BEER: 4}}
VIEWS = {"project": WINE, "global": None, "foreign": BEER}
TARGETS = {"wine": WINE, "beer": BEER, "loose": None}


def combinations():
    """(caller, view, target) triples, 20 per route: every level on this project's resources in the project and
    the global view; the foreign view, the other project's resources and untagged ones for a member of this
    project only (level4) and, where it changes the answer, for a member of both projects (both4)."""
    for level in range(5):
        for view in ("project", "global"):
            yield f"level{level}", view, "wine"
    yield "level4", "foreign", "wine"
    yield "both4", "foreign", "wine"
    for caller in ("level4", "both4"):
        for view in VIEWS:
            yield caller, view, "beer"
    for view in ("project", "global"):
        yield "level4", view, "loose"


def allowed(action: str, target_project: str | None, view_project: str | None, levels: dict) -> bool:
    """sharinghub.md §5.1-§5.3: what the contract allows (the example bodies carry the right suffix)."""
    if action in {"public", "search", "search-or-read"}:
        return True
    if action == "create":  # in a project view only, with that project's suffix, as a developer
        return view_project is not None and target_project == view_project and levels.get(view_project, 0) >= 3
    if target_project is None:  # untagged: invisible and unusable
        return False
    if view_project is not None and target_project != view_project:  # another project than the view's
        return False
    return levels.get(target_project, 0) >= MINIMUM_LEVEL[action]


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, sharinghub_server):
    """One world for the whole module, rolled back at its end; SharingHub mode with one token per caller."""
    with django_db_blocker.unblock(), rolled_back():
        api = Api()
        built = build_world(api)
        from tests.doubles.sharinghub import SharingHubState

        sharinghub_server.state = SharingHubState()
        for project, project_id in PROJECT_IDS.items():
            sharinghub_server.add_project(project, project_id)
        tokens = {}
        for caller, levels in CALLERS.items():
            tokens[caller] = sharinghub_server.token(user=f"matrix-{caller}")
            for project, level in levels.items():
                sharinghub_server.set_access(tokens[caller], project, level)
        with sharinghub_mode(sharinghub_server):
            yield built, tokens, api, sharinghub_server


@pytest.fixture
def matrix(world, django_db_blocker):
    with django_db_blocker.unblock():
        yield world


# --- the tests ----------------------------------------------------------------------------------------------------


def test_expected_table_covers_exactly_the_route_table():
    assert set(EXPECTED) == {rpc.name for rpc in ALL_RPCS}


@pytest.mark.parametrize("rpc", [pytest.param(rpc, id=f"{rpc.method}-{rpc.name}") for rpc in ALL_RPCS])
def test_declared_rule_agrees_with_the_contract(rpc):
    action, checks, guards = EXPECTED[rpc.name]
    if action == "public":
        assert rpc.rule.public and not rpc.rule.checks, rpc.rule.describe()
        return
    assert not rpc.rule.public, f"{rpc.name} must not be public"
    declared = {(c.action, c.resource, c.field) for c in rpc.rule.checks}
    if action == "search-or-read":
        assert declared in (checks, {(R, "server", "")}), f"{rpc.name}: declared {rpc.rule.describe()}"
        return
    assert declared == checks, f"{rpc.name}: declared {rpc.rule.describe()} (expected {sorted(checks)})"
    assert set(rpc.rule.guards) == guards, f"{rpc.name}: declared {rpc.rule.describe()}"
    main = [c for c in rpc.rule.checks if isinstance(c, Check) and c.action == ("read" if action == "search" else action)]
    assert main, f"{rpc.name} declares no {action} check"


@pytest.mark.parametrize(("rpc", "prefix"), CASES)
def test_matrix(matrix, rpc, prefix):
    built, tokens, api, _ = matrix
    action = EXPECTED[rpc.name][0]
    wrong = []
    # a savepoint around requests that may write, and around non-atomic views (an error answer marks the innermost
    # atomic block for rollback: without a savepoint of their own, that would be the test's)
    savepoint = action in {"create", U, D} or not rpc.atomic
    for caller, view, target in combinations():
        side = built.side(target)
        with rolled_back() if savepoint else contextlib.nullcontext():
            response = send(api, rpc, prefix, side, VIEWS[view], bearer(tokens[caller]))
        expected = allowed(action, TARGETS[target], VIEWS[view], CALLERS[caller])
        status = response.status_code
        where = f"{caller} in the {view} view on {target}: {status} {content(response)[:160]!r}"
        if action == "search-or-read" and status == 403 and not allowed(R, TARGETS[target], VIEWS[view], CALLERS[caller]):
            continue  # §5.5 reading of a logged-model search: 403 for an unreadable experiment is fine too
        if expected and status in (401, 403):
            wrong.append(f"allowed but {where}")
        elif not expected and status != 403:
            wrong.append(f"denied by the contract but {where}")
        elif status == 403:
            assert content(response) == b"Permission denied.", where
        if status >= 500 and status not in (501,):
            wrong.append(f"server error: {where}")
        if action in {"search", "search-or-read"} and status == 200:
            wrong += _search_leaks(rpc.name, built, side, response, VIEWS[view], CALLERS[caller], where)
    assert wrong == [], "\n".join(wrong)


def content(response) -> bytes:
    """The body, streamed ones included (read once, then kept)."""
    if response.streaming:
        if not hasattr(response, "read_body"):
            # the test client closes it at the end of the iteration (closing it here would close the connection)
            response.read_body = b"".join(response.streaming_content)
        return response.read_body
    return response.content


def _search_leaks(name: str, built: World, target, response, view: str | None, levels: dict, where: str) -> list[str]:
    """A search returns what the caller may read, all of it, and nothing else."""
    body = body_json(response)
    sides = (built.wine, built.beer, built.loose)
    project_of_model = {side.model_name: side.project for side in sides}
    project_of_experiment = {side.experiment_id: side.project for side in sides}
    expected_sides = [built.wine, built.beer]  # searches over everything
    if name == "SearchExperiments":
        found = [(e["name"], {t["key"]: t["value"] for t in e.get("tags", [])}.get("project"))
                 for e in body.get("experiments", [])]
    elif name == "SearchRegisteredModels":
        found = [(m["name"], project_of_model.get(m["name"])) for m in body.get("registered_models", [])]
    elif name == "SearchModelVersions":
        found = [(f"{v['name']} v{v['version']}", project_of_model.get(v["name"])) for v in body.get("model_versions", [])]
    else:  # searches within the experiments the request names
        entities = body.get("runs" if name == "SearchRuns" else "models", [])
        found = [(item["info"].get("run_id") or item["info"].get("model_id"),
                  project_of_experiment.get(item["info"]["experiment_id"])) for item in entities]
        expected_sides = [target] if target.project else []
    problems = [f"{name} shows {item} of {project!r}: {where}" for item, project in found
                if not allowed("read", project, view, levels)]
    visible = {project for _, project in found}
    for side in expected_sides:
        if allowed("read", side.project, view, levels) and side.project not in visible:
            problems.append(f"{name} hides {side.project}: {where}")
    return problems


@pytest.mark.parametrize(("rpc", "prefix"), CASES)
def test_no_credential(matrix, rpc, prefix):
    """Without a token: 401 for API clients on every protected route, in both views; public routes open."""
    built, _, api, _ = matrix
    action = EXPECTED[rpc.name][0]
    for view in (WINE, None):
        with rolled_back():
            response = send(api, rpc, prefix, built.wine, view, {"HTTP_USER_AGENT": "mlflow-python-client/3.18.0"})
        if action == "public":
            assert response.status_code == 200, response.content
        else:
            assert response.status_code == 401, (view, response.status_code, response.content[:200])
            assert response["WWW-Authenticate"] == 'Bearer realm="mlflow"'


@pytest.mark.parametrize("path", ["/health", "/version", "/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"])
@pytest.mark.parametrize("view", [WINE, None])
def test_public_routes_need_no_token(matrix, path, view):
    _, _, api, double = matrix
    calls_before = len(double.state.calls)
    response = api.client.get(f"{view_prefix(view)}{path}", HTTP_USER_AGENT="mlflow-python-client/3.18.0")
    assert response.status_code == 200, response.content
    assert len(double.state.calls) == calls_before  # SharingHub is not even asked


def test_untagged_experiment_zero_is_denied_even_to_maintainers(matrix):
    """Clients that never call set_experiment write to experiment 0: 403 in every view, for everyone."""
    built, tokens, api, _ = matrix
    for view in (WINE, None):
        for caller in ("level4", "both4"):
            for body in ({"experiment_id": "0"}, {}):  # experiment_id defaults to 0
                with rolled_back():
                    response = api.request("POST", f"{view_prefix(view)}/api/2.0/mlflow/runs/create", body,
                                           **bearer(tokens[caller]))
                assert response.status_code == 403, (view, caller, body, response.content)
            response = api.client.get(f"{view_prefix(view)}/api/2.0/mlflow/experiments/get", {"experiment_id": "0"},
                                      **bearer(tokens[caller]))
            assert response.status_code == 403


def test_unknown_resources_are_mlflow_errors_not_403(matrix):
    """§5.5: a lookup error is the normal MLflow JSON error (set_experiment relies on the 404)."""
    _, tokens, api, _ = matrix
    for path, query in (("experiments/get-by-name", {"experiment_name": "nope (42)"}),
                        ("experiments/get", {"experiment_id": "987654"}),
                        ("runs/get", {"run_id": "f" * 32}),
                        ("registered-models/get", {"name": "nope (42)"})):
        response = api.client.get(f"/{WINE}/tracking/api/2.0/mlflow/{path}", query, **bearer(tokens["level3"]))
        assert response.status_code == 404, (path, response.content)
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_artifact_proxy_paths_without_a_leading_experiment_id_are_denied(matrix):
    """§5.5: the experiment is the leading id of the artifact path; none → 403 (fail closed)."""
    built, tokens, api, _ = matrix
    token = bearer(tokens["both4"])
    base = f"/{WINE}/tracking/api/2.0/mlflow-artifacts"
    for method, url, query in (("GET", f"{base}/artifacts/file.txt", {}),
                               ("GET", f"{base}/artifacts/./{built.beer.experiment_id}/x", {}),
                               ("GET", f"{base}/artifacts", {"path": "runs"}),
                               ("GET", f"{base}/artifacts", {"path": f"./{built.beer.experiment_id}"})):
        response = api.client.get(url, query, **token)
        assert response.status_code in (403, 400), (url, query, response.status_code, response.content)


def test_artifact_listing_of_the_store_root_is_denied(matrix):
    """Listing the artifact root would show every project's experiment directories: it names no experiment,
    so the contract (§5.5, "no leading id → 403", fail closed) denies it."""
    built, tokens, api, _ = matrix
    for view in (WINE, None):
        response = api.client.get(f"{view_prefix(view)}/api/2.0/mlflow-artifacts/artifacts", **bearer(tokens["level4"]))
        listed = [f["path"] for f in body_json(response).get("files", [])]
        assert response.status_code == 403, (view, response.status_code, listed)
