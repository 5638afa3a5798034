"""Experiments through the REST API: lifecycle, tags, validation and search_experiments (spec §2.1, §3, §4)."""

import base64
import json

import pytest

from tracking.models import Experiment

API = "/api/2.0/mlflow/experiments"


def create(api, name, **fields):
    return api.call("CreateExperiment", "POST", f"{API}/create", {"name": name, **fields})["experiment_id"]


def get(api, experiment_id):
    return api.call("GetExperiment", "GET", f"{API}/get", {"experiment_id": experiment_id})["experiment"]


def create_run(api, experiment_id):
    body = {"experiment_id": experiment_id, "start_time": 1}
    return api.call("CreateRun", "POST", "/api/2.0/mlflow/runs/create", body)["run"]["info"]["run_id"]


def run_stage(api, run_id):
    return api.call("GetRun", "GET", "/api/2.0/mlflow/runs/get", {"run_id": run_id})["run"]["info"]["lifecycle_stage"]


def _fails(api, method, path, body, status, error_code):
    response = api.request(method, path, body)
    assert response.status_code == status, response.content
    assert response.json()["error_code"] == error_code, response.json()
    return response.json()["message"]


def search(api, method="POST", **body):
    body.setdefault("max_results", 1000)
    return api.call("SearchExperiments", method, f"{API}/search", body)


def names(body):
    return [e["name"] for e in body.get("experiments", [])]


# --- create / get ------------------------------------------------------------------------------------


def test_create_and_get(api):
    experiment_id = create(api, "first")
    experiment = get(api, experiment_id)
    assert experiment["experiment_id"] == experiment_id
    assert experiment["name"] == "first"
    assert experiment["lifecycle_stage"] == "active"
    assert experiment["artifact_location"] == f"mlflow-artifacts:/{experiment_id}"
    assert experiment["workspace"] == "default"
    assert isinstance(experiment["creation_time"], int)
    assert experiment["last_update_time"] == experiment["creation_time"]
    assert "tags" not in experiment


def test_explicit_artifact_location_is_kept(api):
    experiment_id = create(api, "explicit-loc", artifact_location="s3://bucket/some/where")
    assert get(api, experiment_id)["artifact_location"] == "s3://bucket/some/where"
    run = api.call("CreateRun", "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": experiment_id})["run"]
    assert run["info"]["artifact_uri"] == f"s3://bucket/some/where/{run['info']['run_id']}/artifacts"


def test_runs_artifact_location_is_rejected(api):
    message = _fails(api, "POST", f"{API}/create", {"name": "runs-loc", "artifact_location": "runs:/abc/model"},
                     400, "INVALID_PARAMETER_VALUE")
    assert "runs:/" in message
    assert _fails(api, "GET", f"{API}/get-by-name", {"experiment_name": "runs-loc"}, 404, "RESOURCE_DOES_NOT_EXIST")


def test_too_long_artifact_location_is_rejected(api):
    _fails(api, "POST", f"{API}/create", {"name": "long-loc", "artifact_location": "s3://" + "a" * 2100},
           400, "INVALID_PARAMETER_VALUE")


def test_get_by_name(api):
    experiment_id = create(api, "by-name")
    body = api.call("GetExperimentByName", "GET", f"{API}/get-by-name", {"experiment_name": "by-name"})
    assert body["experiment"]["experiment_id"] == experiment_id
    message = _fails(api, "GET", f"{API}/get-by-name", {"experiment_name": "x"}, 404, "RESOURCE_DOES_NOT_EXIST")
    assert message == "Could not find experiment with name 'x'"


def test_names_are_case_sensitive(api):
    upper = create(api, "CaseName")
    _fails(api, "GET", f"{API}/get-by-name", {"experiment_name": "casename"}, 404, "RESOURCE_DOES_NOT_EXIST")
    lower = create(api, "casename")
    found = api.call("GetExperimentByName", "GET", f"{API}/get-by-name", {"experiment_name": "CaseName"})
    assert found["experiment"]["experiment_id"] == upper != lower


def test_get_missing_experiment(api):
    message = _fails(api, "GET", f"{API}/get", {"experiment_id": "99999"}, 404, "RESOURCE_DOES_NOT_EXIST")
    assert message == "No Experiment with id=99999 exists"


@pytest.mark.parametrize("method, path, body", [
    ("GET", "get", {"experiment_id": "abc"}),
    ("POST", "delete", {"experiment_id": "abc"}),
    ("POST", "update", {"experiment_id": "abc", "new_name": "n"}),
    ("POST", "set-experiment-tag", {"experiment_id": "abc", "key": "k", "value": "v"}),
])
def test_non_integer_experiment_id(api, method, path, body):
    message = _fails(api, method, f"{API}/{path}", body, 400, "INVALID_PARAMETER_VALUE")
    assert message.startswith("Invalid experiment ID 'abc'")


def test_default_experiment_exists_after_migrate(api):
    experiment = get(api, "0")
    assert experiment["name"] == "Default"
    assert experiment["artifact_location"] == "mlflow-artifacts:/0"
    assert experiment["lifecycle_stage"] == "active"
    by_name = api.call("GetExperimentByName", "GET", f"{API}/get-by-name", {"experiment_name": "Default"})
    assert by_name["experiment"]["experiment_id"] == "0"
    # user experiments never collide with id 0
    assert int(create(api, "after-default")) > 0


def test_duplicate_name_is_resource_already_exists(api):
    create(api, "dup")
    message = _fails(api, "POST", f"{API}/create", {"name": "dup"}, 400, "RESOURCE_ALREADY_EXISTS")
    assert message.startswith("Experiment(name=dup) already exists")


def test_name_of_a_deleted_experiment_stays_reserved(api):
    experiment_id = create(api, "reserved")
    api.call("DeleteExperiment", "POST", f"{API}/delete", {"experiment_id": experiment_id})
    _fails(api, "POST", f"{API}/create", {"name": "reserved"}, 400, "RESOURCE_ALREADY_EXISTS")
    # get-by-name still finds it (set_experiment relies on this to refuse a deleted one)
    found = api.call("GetExperimentByName", "GET", f"{API}/get-by-name", {"experiment_name": "reserved"})
    assert found["experiment"]["lifecycle_stage"] == "deleted"


@pytest.mark.parametrize("name", ["", "x" * 501])
def test_invalid_names(api, name):
    _fails(api, "POST", f"{API}/create", {"name": name}, 400, "INVALID_PARAMETER_VALUE")


def test_name_of_500_characters_is_accepted(api):
    experiment_id = create(api, "n" * 500)
    assert get(api, experiment_id)["name"] == "n" * 500


def test_tags_on_create(api):
    tags = [{"key": "team", "value": "a"}, {"key": "mlflow.note.content", "value": "hello"}]
    experiment_id = create(api, "tagged", tags=tags)
    assert sorted(get(api, experiment_id)["tags"], key=lambda t: t["key"]) == sorted(tags, key=lambda t: t["key"])


def test_invalid_tag_on_create_creates_nothing(api):
    _fails(api, "POST", f"{API}/create", {"name": "bad-tag", "tags": [{"key": "ok", "value": "v" * 20001}]},
           400, "INVALID_PARAMETER_VALUE")
    assert not Experiment.objects.filter(name="bad-tag").exists()


# --- experiment tags ---------------------------------------------------------------------------------


def test_set_and_delete_experiment_tag(api, experiment_id):
    api.call("SetExperimentTag", "POST", f"{API}/set-experiment-tag",
             {"experiment_id": experiment_id, "key": "k", "value": "v1"})
    api.call("SetExperimentTag", "POST", f"{API}/set-experiment-tag",
             {"experiment_id": experiment_id, "key": "k", "value": "v2"})  # upsert
    assert get(api, experiment_id)["tags"] == [{"key": "k", "value": "v2"}]
    api.call("DeleteExperimentTag", "POST", f"{API}/delete-experiment-tag", {"experiment_id": experiment_id, "key": "k"})
    assert "tags" not in get(api, experiment_id)


@pytest.mark.parametrize("body", [{"value": ""}, {}])
def test_experiment_tag_value_may_be_empty(api, experiment_id, body):
    # MLflow's schema for SetExperimentTag checks `value` only for its type: "" (or absent) is a valid value
    api.call("SetExperimentTag", "POST", f"{API}/set-experiment-tag", {"experiment_id": experiment_id, "key": "k", **body})
    assert get(api, experiment_id)["tags"] == [{"key": "k", "value": ""}]


def test_delete_missing_experiment_tag_is_404(api, experiment_id):
    _fails(api, "POST", f"{API}/delete-experiment-tag", {"experiment_id": experiment_id, "key": "nope"},
           404, "RESOURCE_DOES_NOT_EXIST")


def test_experiment_tag_value_limit(api, experiment_id):
    api.call("SetExperimentTag", "POST", f"{API}/set-experiment-tag",
             {"experiment_id": experiment_id, "key": "big", "value": "v" * 20000})
    _fails(api, "POST", f"{API}/set-experiment-tag",
           {"experiment_id": experiment_id, "key": "too-big", "value": "v" * 20001}, 400, "INVALID_PARAMETER_VALUE")
    assert [t["key"] for t in get(api, experiment_id)["tags"]] == ["big"]
    assert len(get(api, experiment_id)["tags"][0]["value"]) == 20000  # not truncated


def test_experiment_tag_on_missing_experiment_is_404(api):
    _fails(api, "POST", f"{API}/set-experiment-tag", {"experiment_id": "99999", "key": "k", "value": "v"},
           404, "RESOURCE_DOES_NOT_EXIST")


def test_experiment_tag_on_deleted_experiment_is_refused(api, experiment_id):
    api.call("DeleteExperiment", "POST", f"{API}/delete", {"experiment_id": experiment_id})
    message = _fails(api, "POST", f"{API}/set-experiment-tag", {"experiment_id": experiment_id, "key": "k", "value": "v"},
                     400, "INVALID_PARAMETER_VALUE")
    assert "must be in the 'active' state" in message


# --- rename / delete / restore -------------------------------------------------------------------------


def test_rename(api, experiment_id):
    before = get(api, experiment_id)
    api.call("UpdateExperiment", "POST", f"{API}/update", {"experiment_id": experiment_id, "new_name": "renamed"})
    after = get(api, experiment_id)
    assert after["name"] == "renamed"
    assert after["last_update_time"] >= before["last_update_time"]
    _fails(api, "GET", f"{API}/get-by-name", {"experiment_name": before["name"]}, 404, "RESOURCE_DOES_NOT_EXIST")


def test_rename_to_an_existing_name_is_refused(api, experiment_id):
    create(api, "taken")
    _fails(api, "POST", f"{API}/update", {"experiment_id": experiment_id, "new_name": "taken"}, 400,
           "RESOURCE_ALREADY_EXISTS")
    assert get(api, experiment_id)["name"] == "fixture-exp"


def test_rename_missing_experiment_is_404(api):
    _fails(api, "POST", f"{API}/update", {"experiment_id": "99999", "new_name": "x"}, 404, "RESOURCE_DOES_NOT_EXIST")


def test_delete_marks_runs_deleted_and_restore_brings_them_back(api, experiment_id):
    runs = [create_run(api, experiment_id) for _ in range(2)]
    api.call("DeleteExperiment", "POST", f"{API}/delete", {"experiment_id": experiment_id})
    assert get(api, experiment_id)["lifecycle_stage"] == "deleted"
    assert [run_stage(api, r) for r in runs] == ["deleted", "deleted"]
    body = api.call("SearchRuns", "POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]})
    assert body == {}

    api.call("RestoreExperiment", "POST", f"{API}/restore", {"experiment_id": experiment_id})
    assert get(api, experiment_id)["lifecycle_stage"] == "active"
    assert [run_stage(api, r) for r in runs] == ["active", "active"]


def test_runs_cannot_be_created_in_a_deleted_experiment(api, experiment_id):
    api.call("DeleteExperiment", "POST", f"{API}/delete", {"experiment_id": experiment_id})
    message = _fails(api, "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": experiment_id}, 400,
                     "INVALID_PARAMETER_VALUE")
    assert "must be in the 'active' state" in message


def test_delete_of_deleted_or_missing_experiment_is_404(api, experiment_id):
    api.call("DeleteExperiment", "POST", f"{API}/delete", {"experiment_id": experiment_id})
    _fails(api, "POST", f"{API}/delete", {"experiment_id": experiment_id}, 404, "RESOURCE_DOES_NOT_EXIST")
    _fails(api, "POST", f"{API}/delete", {"experiment_id": "99999"}, 404, "RESOURCE_DOES_NOT_EXIST")


def test_restore_of_active_experiment_is_refused(api, experiment_id):
    response = api.request("POST", f"{API}/restore", {"experiment_id": experiment_id})
    assert response.status_code in (400, 404), response.content
    assert get(api, experiment_id)["lifecycle_stage"] == "active"


def test_default_experiment_can_be_deleted_and_restored(api):
    api.call("DeleteExperiment", "POST", f"{API}/delete", {"experiment_id": "0"})
    assert get(api, "0")["lifecycle_stage"] == "deleted"
    api.call("RestoreExperiment", "POST", f"{API}/restore", {"experiment_id": "0"})
    assert get(api, "0")["lifecycle_stage"] == "active"


# --- search_experiments ----------------------------------------------------------------------------


@pytest.fixture
def three(api):
    """alpha (tags team=a, env=prod), Beta (team=b), gamma (no tags); gamma deleted is separate."""
    ids = {
        "alpha": create(api, "s-alpha", tags=[{"key": "team", "value": "a"}, {"key": "env", "value": "prod"}]),
        "Beta": create(api, "s-Beta", tags=[{"key": "team", "value": "b"}]),
        "gamma": create(api, "s-gamma"),
    }
    # distinct, known times: alpha oldest, gamma newest
    for i, experiment_id in enumerate(ids.values()):
        Experiment.objects.filter(pk=experiment_id).update(creation_time=1000 + i, last_update_time=5000 - i)
    return ids


@pytest.mark.parametrize("filter_string, expected", [
    ("name = 's-alpha'", ["s-alpha"]),
    ("name != 's-alpha' AND name LIKE 's-%'", ["s-gamma", "s-Beta"]),
    ("name LIKE 's-%a'", ["s-gamma", "s-Beta", "s-alpha"]),
    ("name LIKE 's-b%'", []),  # LIKE is case-sensitive
    ("name ILIKE 's-b%'", ["s-Beta"]),
    ("attribute.name = 's-gamma'", ["s-gamma"]),
    ("name LIKE 's-%' AND tags.team = 'a'", ["s-alpha"]),
    ("name LIKE 's-%' AND tags.team != 'a'", ["s-Beta"]),
    ("name LIKE 's-%' AND tags.team LIKE '%'", ["s-Beta", "s-alpha"]),
    ("name LIKE 's-%' AND tags.team ILIKE 'B'", ["s-Beta"]),
    ("name LIKE 's-%' AND tags.team IS NULL", ["s-gamma"]),
    ("name LIKE 's-%' AND tags.team IS NOT NULL", ["s-Beta", "s-alpha"]),
    ("name LIKE 's-%' AND tag.`env` = 'prod'", ["s-alpha"]),
    ("name LIKE 's-%' AND creation_time > 1000", ["s-gamma", "s-Beta"]),
    ("name LIKE 's-%' AND last_update_time <= 4999", ["s-gamma", "s-Beta"]),
])
def test_search_filters(api, three, filter_string, expected):
    assert names(search(api, filter=filter_string)) == expected


def test_search_by_experiment_id(api, three):
    wanted = [three["alpha"], three["gamma"]]
    body = search(api, filter=f"experiment_id IN ('{wanted[0]}', '{wanted[1]}')")
    assert names(body) == ["s-gamma", "s-alpha"]
    body = search(api, filter=f"name LIKE 's-%' AND experiment_id NOT IN ('{wanted[0]}')")
    assert names(body) == ["s-gamma", "s-Beta"]
    assert names(search(api, filter=f"experiment_id = '{three['Beta']}'")) == ["s-Beta"]


@pytest.fixture
def ordered(api):
    """o-b, o-a, o-c created in this order (so by id), with scrambled creation and update times."""
    times = {"o-b": (3000, 1), "o-a": (1000, 3), "o-c": (2000, 2)}
    for name, (created, updated) in times.items():
        Experiment.objects.filter(pk=create(api, name)).update(creation_time=created, last_update_time=updated)


@pytest.mark.parametrize("order_by, expected", [
    (["name"], ["o-a", "o-b", "o-c"]),
    (["name ASC"], ["o-a", "o-b", "o-c"]),
    (["name DESC"], ["o-c", "o-b", "o-a"]),
    (["attribute.name DESC"], ["o-c", "o-b", "o-a"]),
    (["creation_time ASC"], ["o-a", "o-c", "o-b"]),
    (["creation_time DESC"], ["o-b", "o-c", "o-a"]),
    (["last_update_time"], ["o-b", "o-c", "o-a"]),
    (["last_update_time DESC"], ["o-a", "o-c", "o-b"]),
    (["experiment_id ASC"], ["o-b", "o-a", "o-c"]),
    (["experiment_id DESC"], ["o-c", "o-a", "o-b"]),
])
def test_search_order_by(api, ordered, order_by, expected):
    assert names(search(api, filter="name LIKE 'o-%'", order_by=order_by)) == expected


def test_search_default_order_is_creation_time_desc_then_id(api):
    ids = [create(api, f"ord-{i}") for i in range(4)]
    times = {ids[0]: 10, ids[1]: 20, ids[2]: 20, ids[3]: 5}
    for experiment_id, created in times.items():
        Experiment.objects.filter(pk=experiment_id).update(creation_time=created)
    body = search(api, filter="name LIKE 'ord-%'")
    assert [e["experiment_id"] for e in body["experiments"]] == [ids[1], ids[2], ids[0], ids[3]]


def test_search_view_type(api, three):
    api.call("DeleteExperiment", "POST", f"{API}/delete", {"experiment_id": three["gamma"]})
    assert names(search(api, filter="name LIKE 's-%'")) == ["s-Beta", "s-alpha"]
    assert names(search(api, filter="name LIKE 's-%'", view_type="ACTIVE_ONLY")) == ["s-Beta", "s-alpha"]
    assert names(search(api, filter="name LIKE 's-%'", view_type="DELETED_ONLY")) == ["s-gamma"]
    assert names(search(api, filter="name LIKE 's-%'", view_type="ALL")) == ["s-gamma", "s-Beta", "s-alpha"]


def test_search_returns_tags_and_workspace(api, three):
    experiment = search(api, filter="name = 's-alpha'")["experiments"][0]
    assert experiment["workspace"] == "default"
    assert {t["key"]: t["value"] for t in experiment["tags"]} == {"team": "a", "env": "prod"}
    assert experiment["artifact_location"] == f"mlflow-artifacts:/{three['alpha']}"


def test_search_includes_default_experiment(api):
    assert "Default" in names(search(api))


def test_search_get_form(api, ordered):
    query = {"max_results": "10", "filter": "name LIKE 'o-%'", "order_by": ["name DESC"], "view_type": "ALL"}
    body = api.call("SearchExperiments", "GET", f"{API}/search", query)
    assert names(body) == ["o-c", "o-b", "o-a"]
    two_keys = api.call("SearchExperiments", "GET", f"{API}/search",
                        {**query, "order_by": ["creation_time DESC", "name"], "view_type": "3"})
    assert names(two_keys) == ["o-b", "o-c", "o-a"]
    ajax = api.call("SearchExperiments", "GET", "/ajax-api/2.0/mlflow/experiments/search", query)
    assert ajax == body


def test_search_pagination(api):
    ids = [create(api, f"page-{i}") for i in range(5)]
    seen, token, pages = [], None, 0
    while True:
        body = search(api, filter="name LIKE 'page-%'", max_results=2, **({"page_token": token} if token else {}))
        pages += 1
        seen += [e["experiment_id"] for e in body["experiments"]]
        token = body.get("next_page_token")
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    # the token is MLflow's own: base64 of {"offset": N}, so it stays valid across servers
    first = search(api, filter="name LIKE 'page-%'", max_results=2)
    assert json.loads(base64.b64decode(first["next_page_token"])) == {"offset": 2}
    # exactly one full page: no token either
    exact = search(api, filter="name LIKE 'page-%'", max_results=5)
    assert len(exact["experiments"]) == 5 and "next_page_token" not in exact


def test_search_bad_page_token(api):
    message = _fails(api, "POST", f"{API}/search", {"max_results": 10, "page_token": "abc"}, 400,
                     "INVALID_PARAMETER_VALUE")
    assert message.startswith("Invalid page token")
    message = _fails(api, "POST", f"{API}/search", {"max_results": 10, "page_token": "not-base64!"}, 400,
                     "INVALID_PARAMETER_VALUE")
    assert message == "Invalid page token, could not base64-decode"


@pytest.mark.parametrize("max_results", [0, -1, 50001])
def test_search_max_results_range(api, max_results):
    _fails(api, "POST", f"{API}/search", {"max_results": max_results}, 400, "INVALID_PARAMETER_VALUE")


def test_search_max_results_50000_is_allowed(api):
    assert "experiments" in search(api, max_results=50000)


@pytest.mark.parametrize("filter_string, fragment", [
    ("name = 'a' OR name = 'b'", "Invalid clause(s) in filter string"),
    ("foo = 'a'", "Invalid attribute key 'foo'"),
    ("metrics.x > 1", "Invalid entity type 'metrics'"),
    ("name = a", "quoted string"),
    ("name > 'a'", "Invalid comparator '>'"),
    ("name IS NULL", ""),
    ("creation_time > 'x'", ""),
])
def test_search_bad_filters(api, filter_string, fragment):
    message = _fails(api, "POST", f"{API}/search", {"max_results": 10, "filter": filter_string}, 400,
                     "INVALID_PARAMETER_VALUE")
    assert fragment in message


@pytest.mark.parametrize("order_by", [["bogus"], ["tags.team"], ["name SIDEWAYS"], ["name", "name DESC"]])
def test_search_bad_order_by(api, order_by):
    _fails(api, "POST", f"{API}/search", {"max_results": 10, "order_by": order_by}, 400, "INVALID_PARAMETER_VALUE")
