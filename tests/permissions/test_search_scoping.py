"""Searches are scoped in SQL (sharinghub.md §5.6): the project view shows its project only, the global view
every readable project and never untagged or foreign entities; pages stay full and page tokens work however
many hidden rows are interleaved; model versions follow their registered model's project, not their run's;
and the permission check costs at most one SQL query per request once SharingHub's answers are cached."""

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from registry import services as registry_services
from registry.models import ModelVersion, RegisteredModel
from tracking import services as tracking_services
from tracking.models import Experiment
from tests.permissions.worlds import BEER, PROJECT_IDS, WINE, bearer, build_side, ok, view_prefix

API = "/api/2.0/mlflow"


@pytest.fixture
def projects(sharinghub):
    for project, project_id in PROJECT_IDS.items():
        sharinghub.add_project(project, project_id)
    return sharinghub


@pytest.fixture
def wine_reader(projects):
    """A reporter of team/wine who cannot see other/beer at all."""
    return projects.token(project=WINE, level=2)


def search(api, token, what: str, view: str | None, **body):
    path = {"experiments": "experiments/search", "models": "registered-models/search",
            "versions": "model-versions/search"}[what]
    return ok(api.request("POST", f"{view_prefix(view)}{API}/{path}", body, **bearer(token)), path)


def names(body: dict, key: str) -> list[str]:
    return [item["name"] for item in body.get(key, [])]


def interleaved_world(count: int = 30):
    """count experiments and registered models per project, created alternately with foreign and untagged ones
    so that every page of an unfiltered query would mix them."""
    for i in range(count):
        for project, label in ((WINE, "wine"), (BEER, "beer"), (None, "loose")):
            suffix = f" ({PROJECT_IDS[project]})" if project else ""
            tracking_services.experiment_create(name=f"{label}-{i:02d}{suffix}", project=project)
            registry_services.registered_model_create(name=f"{label}-model-{i:02d}{suffix}", tags=[], description=None,
                                                      project=project)


@pytest.fixture(scope="class")
def thirty_each(django_db_setup, django_db_blocker):
    """The interleaved world with 30 per project, built once for the class and rolled back at its end."""
    from tests.permissions.worlds import rolled_back

    with django_db_blocker.unblock(), rolled_back():
        interleaved_world(30)
        yield


# --- scope per view ------------------------------------------------------------------------------------------


def test_project_view_shows_its_project_and_global_view_every_readable_one(api, projects):
    interleaved_world(3)
    both = projects.token(project=WINE, level=2)
    projects.set_access(both, BEER, 1)
    wine_only = projects.token(project=WINE, level=1)
    wine = {f"wine-{i:02d} (42)" for i in range(3)}
    beer = {f"beer-{i:02d} (7)" for i in range(3)}

    assert set(names(search(api, both, "experiments", WINE), "experiments")) == wine
    assert set(names(search(api, both, "experiments", BEER), "experiments")) == beer
    assert set(names(search(api, both, "experiments", None), "experiments")) == wine | beer  # no "Default", no loose-*
    assert set(names(search(api, wine_only, "experiments", None), "experiments")) == wine
    assert names(search(api, wine_only, "experiments", BEER), "experiments") == []  # foreign view: nothing
    models = search(api, wine_only, "models", None)
    assert set(names(models, "registered_models")) == {f"wine-model-{i:02d} (42)" for i in range(3)}
    nobody = projects.token()  # valid token, no project at all
    assert search(api, nobody, "experiments", None) == {}
    assert search(api, nobody, "models", WINE) == {}


def test_deleted_and_untagged_follow_the_same_rule(api, projects, wine_reader):
    interleaved_world(2)
    for name in ("wine-00 (42)", "beer-00 (7)", "loose-00"):
        tracking_services.experiment_delete(experiment_id=Experiment.objects.get(name=name).pk)
    body = search(api, wine_reader, "experiments", None, view_type="ALL")
    assert set(names(body, "experiments")) == {"wine-00 (42)", "wine-01 (42)"}
    body = search(api, wine_reader, "experiments", WINE, view_type="DELETED_ONLY")
    assert names(body, "experiments") == ["wine-00 (42)"]


@pytest.mark.usefixtures("thirty_each")
class TestPaging:
    @pytest.mark.parametrize("view", [WINE, None], ids=["project-view", "global-view"])
    @pytest.mark.parametrize(("what", "key", "label"), [("experiments", "experiments", "wine-"),
                                                        ("models", "registered_models", "wine-model-")])
    def test_pages_stay_full_and_tokens_work_across_hidden_rows(self, thirty_each, api, projects, wine_reader, view, what,
                                                                key, label):
        """30 readable among 60 hidden ones, max_results=10: exactly three full pages, then no token."""
        calls_before = len(projects.state.calls)
        seen, token, pages = [], None, []
        while True:
            body = search(api, wine_reader, what, view, max_results=10, **({"page_token": token} if token else {}))
            pages.append(len(body.get(key, [])))
            seen += names(body, key)
            token = body.get("next_page_token")
            if not token or len(pages) > 5:
                break
        assert pages == [10, 10, 10], pages  # and no token after the last full page
        assert len(seen) == len(set(seen)) == 30
        assert all(name.startswith(label) for name in seen), seen
        # one authentication and one check per project, whatever the number of rows: no per-row permission call
        assert len(projects.state.calls) - calls_before <= 1 + len(PROJECT_IDS), projects.state.calls[calls_before:]


def test_global_search_asks_sharinghub_once_per_project_then_uses_the_cache(api, projects, wine_reader):
    interleaved_world(2)
    search(api, wine_reader, "experiments", None)
    calls = list(projects.state.calls)
    assert sorted(calls) == sorted(["/api/auth/info", "/api/check/team%2Fwine", "/api/check/other%2Fbeer"]), calls
    search(api, wine_reader, "models", None)
    search(api, wine_reader, "versions", None)
    assert projects.state.calls == calls  # all cached


def test_search_runs_returns_the_readable_experiments_runs_only(api, projects):
    """§5.6 names SearchRuns among the filtered searches (the original filters it too): naming an unreadable
    or untagged experiment excludes its runs instead of failing the whole search. The 3.x client's
    mlflow.search_runs() without an active experiment searches experiment 0 and must get an empty answer."""
    with override_settings(PERMISSION_MODE="open"):
        wine = build_side(api, WINE, "wine (42)", "wine-model (42)")
        beer = build_side(api, BEER, "beer (7)", "beer-model (7)")
    reader = projects.token(project=WINE, level=2)
    for view in (WINE, None):
        response = api.request("POST", f"{view_prefix(view)}{API}/runs/search",
                               {"experiment_ids": [wine.experiment_id, beer.experiment_id, "0"]}, **bearer(reader))
        assert response.status_code == 200, (view, response.status_code, response.content)
        assert [run["info"]["run_id"] for run in response.json()["runs"]] == [wine.run_id]
        response = api.request("POST", f"{view_prefix(view)}{API}/runs/search", {"experiment_ids": ["0"]},
                               **bearer(reader))
        assert response.status_code == 200 and response.json() == {}, (view, response.status_code, response.content)


# --- model versions belong to their registered model's project -------------------------------------------------


def test_versions_are_filtered_by_the_registered_model_project_not_the_run(api, projects):
    """Defect 5 of §10: the original used the run's experiment and failed for versions without a run."""
    with override_settings(PERMISSION_MODE="open"):  # data as it may exist on a server (created by anyone, any way)
        wine = build_side(api, WINE, "wine (42)", "wine-model (42)")
        beer = build_side(api, BEER, "beer (7)", "beer-model (7)")
    crossed = {  # model -> (run it comes from, model's project)
        "wine-crossed (42)": (beer.run_id, WINE),
        "beer-crossed (7)": (wine.run_id, BEER),
    }
    for name, (run_id, project) in crossed.items():
        registry_services.registered_model_create(name=name, tags=[], description=None, project=project)
        model = RegisteredModel.objects.get(name=name)
        ModelVersion.objects.create(registered_model=model, version=1, creation_timestamp=1, last_updated_timestamp=1,
                                    source=f"runs:/{run_id}/model", storage_location="mlflow-artifacts:/x", run_id=run_id)
    # a version without any run (e.g. a models:/m-... source whose logged model has no source run)
    registry_services.registered_model_create(name="wine-runless (42)", tags=[], description=None, project=WINE)
    ModelVersion.objects.create(registered_model=RegisteredModel.objects.get(name="wine-runless (42)"), version=1,
                                creation_timestamp=1, last_updated_timestamp=1, source="models:/m-0123", storage_location="x")

    wine_reader = projects.token(project=WINE, level=2)
    for view in (WINE, None):
        versions = names(search(api, wine_reader, "versions", view), "model_versions")
        assert sorted(versions) == ["wine-crossed (42)", "wine-model (42)", "wine-runless (42)"], (view, versions)
        models = names(search(api, wine_reader, "models", view), "registered_models")
        assert sorted(models) == ["wine-crossed (42)", "wine-model (42)", "wine-runless (42)"], (view, models)
    # by name too: the crossed beer model stays hidden although its run is a wine run
    response = api.client.get(f"/{WINE}/tracking{API}/model-versions/get", {"name": "beer-crossed (7)", "version": "1"},
                              **bearer(wine_reader))
    assert response.status_code == 403
    response = api.client.get(f"{API}/model-versions/get", {"name": "wine-crossed (42)", "version": "1"},
                              **bearer(wine_reader))
    assert response.status_code == 200, response.content


# --- cost: at most one extra SQL query ---------------------------------------------------------------------


def _queries(api, method: str, path: str, body, headers) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = api.request(method, path, body, **headers)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries), [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("view", [WINE, None], ids=["project-view", "global-view"])
def test_permission_check_costs_at_most_one_query_with_a_warm_cache(api, projects, view):
    with override_settings(PERMISSION_MODE="open"):
        wine = build_side(api, WINE, "wine (42)", "wine-model (42)")
    base = f"{view_prefix(view)}{API}"
    requests = [
        ("GET", f"{base}/runs/get", {"run_id": wine.run_id}),
        ("POST", f"{base}/runs/log-batch", {"run_id": wine.run_id, "metrics": [
            {"key": f"m{i}", "value": float(i), "timestamp": 5000, "step": 3} for i in range(10)]}),
        ("GET", f"{base}/registered-models/get", {"name": wine.model_name}),
    ]
    token = projects.token(project=WINE, level=3)
    for method, path, body in requests:
        with override_settings(PERMISSION_MODE="open"):
            _queries(api, method, path, body, {})  # warm whatever the handler warms
            open_count, open_sql = _queries(api, method, path, body, {})
        _queries(api, method, path, body, bearer(token))  # warms the permission cache
        calls = len(projects.state.calls)
        checked_count, checked_sql = _queries(api, method, path, body, bearer(token))
        assert len(projects.state.calls) == calls, "warm cache: SharingHub must not be asked"
        extra = checked_count - open_count
        assert extra <= 1, (path, extra, checked_sql[: checked_count - open_count + 2])


def test_global_search_costs_at_most_one_query_more(api, projects, wine_reader):
    """The global view needs the list of projects that own something (one query) besides the scoped search."""
    interleaved_world(2)
    with override_settings(PERMISSION_MODE="open"):
        open_count, _ = _queries(api, "POST", f"{API}/experiments/search", {"max_results": 10}, {})
    search(api, wine_reader, "experiments", None)
    checked_count, sql = _queries(api, "POST", f"{API}/experiments/search", {"max_results": 10}, bearer(wine_reader))
    assert checked_count - open_count <= 1, sql
