"""The Django admin for operators: read-only changelists of MLflow's entities with bounded queries, the STAC
outbox, the page that clears the permission cache (staff only, and it really forgets), and the admin's own static
files under the ingress prefix."""

import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import set_script_prefix
from django.utils import timezone

from permissions import upstream
from registry.models import ModelVersion, RegisteredModel
from stac_publish.models import PublicationJob
from tracking.models import Experiment, Run

pytestmark = pytest.mark.django_db

WINE, BEER = "team/wine", "other/beer"


def add_runs(count: int, *, project: str = WINE, status: str = "FINISHED", start: int = 0) -> None:
    experiment, _ = Experiment.objects.get_or_create(
        name=f"exp {project}", defaults={"project": project, "creation_time": 0, "last_update_time": 0})
    Run.objects.bulk_create([Run(run_uuid=f"{start + i:032x}", experiment=experiment, name=f"run-{start + i}",
                                 status=status, start_time=i) for i in range(count)])


def add_versions(count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        model = RegisteredModel.objects.create(name=f"model-{i}", creation_timestamp=0, last_updated_timestamp=0,
                                               project=WINE)
        ModelVersion.objects.create(registered_model=model, version=1, creation_timestamp=0, last_updated_timestamp=0,
                                    source="mlflow-artifacts:/1/x", storage_location="mlflow-artifacts:/1/x")


def add_jobs(count: int, start: int = 0) -> None:
    PublicationJob.objects.bulk_create([PublicationJob(item_id=f"item-{start + i}", action=PublicationJob.PUT,
                                                       next_attempt_at=timezone.now()) for i in range(count)])


def queries_of(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return [query["sql"] for query in captured.captured_queries]


CHANGELISTS = [
    ("/admin/tracking/experiment/", lambda n, start: [Experiment.objects.create(
        name=f"e{start + i}", project=WINE, creation_time=0, last_update_time=0) for i in range(n)]),
    ("/admin/tracking/run/", lambda n, start: add_runs(n, start=start)),
    ("/admin/registry/registeredmodel/", add_versions),
    ("/admin/registry/modelversion/", add_versions),
    ("/admin/stac_publish/publicationjob/", add_jobs),
]


@pytest.mark.parametrize(("url", "add"), CHANGELISTS, ids=[url.split("/")[-2] for url, _ in CHANGELISTS])
def test_a_changelist_costs_the_same_queries_for_3_or_30_rows(admin_client, url, add):
    add(3, 0)
    few = queries_of(admin_client, url)
    add(27, 3)
    many = queries_of(admin_client, url)
    assert len(many) == len(few), "\n".join(many)


def test_run_filters_never_scan_the_runs_table_for_their_choices(admin_client):
    add_runs(5)
    add_runs(2, project=BEER, status="FAILED", start=5)
    distinct_over_runs = [sql for sql in queries_of(admin_client, "/admin/tracking/run/")
                          if "DISTINCT" in sql and re.search(r'FROM "runs"', sql)]
    assert distinct_over_runs == []


def listed(client, url: str, **query) -> list:
    return list(client.get(url, query).context["cl"].result_list)


def test_runs_are_searched_and_filtered(admin_client):
    add_runs(3)
    add_runs(2, project=BEER, status="FAILED", start=3)
    runs = "/admin/tracking/run/"
    assert len(listed(admin_client, runs)) == 5
    assert {run.status for run in listed(admin_client, runs, status="FAILED")} == {"FAILED"}
    assert len(listed(admin_client, runs, status="FAILED")) == 2
    assert {run.experiment.project for run in listed(admin_client, runs, project=WINE)} == {WINE}
    assert [run.name for run in listed(admin_client, runs, q="run-4")] == ["run-4"]
    assert [run.name for run in listed(admin_client, runs, q="exp other")] == ["run-4", "run-3"]  # by experiment
    page = admin_client.get(runs).content.decode()
    assert f"?project={WINE.replace('/', '%2F')}" in page and "?status=KILLED" in page  # the filter choices


@pytest.mark.parametrize("model", ["tracking/experiment", "tracking/run", "registry/registeredmodel",
                                   "registry/modelversion"])
def test_mlflow_entities_are_read_only(admin_client, model):
    add_runs(1)
    add_versions(1)
    obj = {"tracking/experiment": Experiment.objects.exclude(pk=0).first(), "tracking/run": Run.objects.first(),
           "registry/registeredmodel": RegisteredModel.objects.first(),
           "registry/modelversion": ModelVersion.objects.first()}[model]
    base = f"/admin/{model}/"
    assert admin_client.get(f"{base}add/").status_code == 403
    view = admin_client.get(f"{base}{obj.pk}/change/")
    assert view.status_code == 200
    assert b'name="_save"' not in view.content and b"deletelink" not in view.content
    assert admin_client.post(f"{base}{obj.pk}/change/", {}).status_code == 403
    assert admin_client.get(f"{base}{obj.pk}/delete/").status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_publication_jobs_are_not_made_by_hand(admin_client):
    assert admin_client.get("/admin/stac_publish/publicationjob/add/").status_code == 403


# --- the permission cache ------------------------------------------------------------------------------------------

CACHE_PAGE = "/admin/permission-cache/"


def logged_in(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_the_cache_page_is_for_staff_only(sharinghub):
    anonymous = logged_in(None).get(CACHE_PAGE)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    user = logged_in(User.objects.create_user("someone", password="x")).post(CACHE_PAGE)
    assert user.status_code == 302 and user["Location"].startswith("/admin/login/")
    staff = logged_in(User.objects.create_user("operator", password="x", is_staff=True)).get(CACHE_PAGE)
    assert staff.status_code == 200
    assert b"Clear permission cache" in staff.content and b"PROJECT_CACHE_TIMEOUT" in staff.content


def test_the_cache_page_says_open_mode_caches_nothing(admin_client):
    assert b"nothing is cached" in admin_client.get(CACHE_PAGE).content


def test_the_admin_index_links_the_cache_page(admin_client):
    assert f'href="{CACHE_PAGE}"'.encode() in admin_client.get("/admin/").content


def test_clearing_forgets_access_levels_and_logins(sharinghub, settings):
    sharinghub.add_project(WINE, 42)
    token = sharinghub.token(project=WINE, level=2)
    credential = upstream.Credential("bearer", token)
    upstream.authenticated(credential)
    assert upstream.project_access(credential, WINE).role == upstream.REPORTER
    sharinghub.set_access(token, WINE, 4)  # promoted in GitLab; revoked below
    sharinghub.state.tokens.discard(token)
    assert upstream.project_access(credential, WINE).role == upstream.REPORTER  # cached
    upstream.authenticated(credential)  # cached: no exception

    operator = logged_in(User.objects.create_user("operator", password="x", is_staff=True))
    response = operator.post(CACHE_PAGE, follow=True)
    assert response.redirect_chain == [(CACHE_PAGE, 302)]
    assert b"Permission cache cleared" in response.content

    with pytest.raises(upstream.Unauthenticated):
        upstream.authenticated(credential)
    sharinghub.state.tokens.add(token)
    assert upstream.project_access(credential, WINE).role == upstream.MAINTAINER


def test_with_a_shared_cache_the_local_memory_is_forgotten_too(sharinghub, monkeypatch):
    """CACHE_URL (Redis): answers also sit a few seconds in each process's memory, which the clearing empties."""
    monkeypatch.setattr(upstream, "_remote_cache", lambda: True)
    sharinghub.add_project(WINE, 42)
    token = sharinghub.token(project=WINE, level=2)
    credential = upstream.Credential("bearer", token)
    assert upstream.project_access(credential, WINE).role == upstream.REPORTER
    sharinghub.set_access(token, WINE, 3)
    assert upstream.project_access(credential, WINE).role == upstream.REPORTER  # from the process's memory
    operator = logged_in(User.objects.create_user("operator", password="x", is_staff=True))
    assert b"every server process asks again within 5 seconds" in operator.post(CACHE_PAGE, follow=True).content
    assert upstream.project_access(credential, WINE).role == upstream.DEVELOPER


def test_a_get_clears_nothing(sharinghub):
    sharinghub.add_project(WINE, 42)
    token = sharinghub.token(project=WINE, level=2)
    credential = upstream.Credential("bearer", token)
    upstream.project_access(credential, WINE)
    sharinghub.set_access(token, WINE, 4)
    logged_in(User.objects.create_user("operator", password="x", is_staff=True)).get(CACHE_PAGE)
    assert upstream.project_access(credential, WINE).role == upstream.REPORTER


# --- the admin's static files --------------------------------------------------------------------------------------


def test_the_admin_links_its_css_under_each_requests_prefix():
    """Django would fix the prefix of the first request for the whole process; each page must carry its own."""
    client = Client()

    def login_page(**headers) -> str:
        set_script_prefix("/")  # as the WSGI handler does at the start of a request
        return client.get("/admin/login/", **headers).content.decode()

    direct_first = login_page()
    behind_ingress = login_page(HTTP_X_SCRIPT_NAME="/mlflow")
    direct = login_page()
    assert 'href="/static/admin/css/base.css"' in direct_first
    assert 'href="/mlflow/static/admin/css/base.css"' in behind_ingress
    assert 'href="/static/admin/css/base.css"' in direct
    css = client.get("/static/admin/css/base.css", HTTP_X_SCRIPT_NAME="/mlflow")
    assert css.status_code == 200
    assert css["Content-Type"].startswith("text/css")
