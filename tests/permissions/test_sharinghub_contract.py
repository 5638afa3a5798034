"""The SharingHub contract (sharinghub.md §2-§6, §10) through raw HTTP against the SharingHub double:
credentials and how they are forwarded, unauthenticated callers, checker answers, faults, the cache, the
project tag, name suffixes, model-version sources and project paths containing a `tracking` segment."""

import time
import uuid
from urllib.parse import quote, urlencode

import pytest
from django.core.cache import cache
from django.test import override_settings

from mlflow_sh.env import cache_from_url
from permissions.middleware import split_project_view
from registry.models import ModelVersion, RegisteredModel, RegisteredModelTag
from tests.doubles.sharinghub import DEFAULT_TOKEN_IDENTITY
from tests.permissions.worlds import BEER, PROJECT_IDS, WINE, bearer, build_side, ok, view_prefix
from tracking.models import Experiment, ExperimentTag, Metric, Run

API = "/api/2.0/mlflow"
MLFLOW_UA = {"HTTP_USER_AGENT": "mlflow-python-client/3.18.0"}
BROWSER_UA = {"HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
NOT_AUTHENTICATED = ("You are not authenticated. Please use the Authorization header for bearer auth, if you are "
                     "using the MLflow client set MLFLOW_TRACKING_TOKEN.")


@pytest.fixture
def projects(sharinghub):
    for project, project_id in PROJECT_IDS.items():
        sharinghub.add_project(project, project_id)
    return sharinghub


@pytest.fixture
def seen(projects, monkeypatch):
    """Every request the double receives: (path, headers)."""
    records = []
    original = projects.answer

    def answer(path, query, headers):
        records.append((path, {k.lower(): v for k, v in headers.items()}))
        return original(path, query, headers)

    monkeypatch.setattr(projects, "answer", answer)
    return records


@pytest.fixture
def wine(api, projects):
    """The wine project's data (built in open mode), with SharingHub's answers not cached yet."""
    with override_settings(PERMISSION_MODE="open"):
        side = build_side(api, WINE, "wine (42)", "wine-model (42)")
    cache.clear()
    return side


@pytest.fixture
def beer(api, projects):
    with override_settings(PERMISSION_MODE="open"):
        side = build_side(api, BEER, "beer (7)", "beer-model (7)")
    cache.clear()
    return side


def get(api, path: str, query: dict | None = None, view: str | None = WINE, **headers):
    return api.client.get(f"{view_prefix(view)}{path}", query or {}, **headers)


def post(api, path: str, body: dict, view: str | None = WINE, method: str = "POST", **headers):
    return api.request(method, f"{view_prefix(view)}{path}", body, **headers)


# --- §3 credentials ------------------------------------------------------------------------------------------


def test_bearer_token_is_forwarded_as_x_gitlab_token(api, projects, seen, wine):
    token = projects.token(project=WINE, level=2)
    assert get(api, f"{API}/experiments/get", {"experiment_id": wine.experiment_id}, **bearer(token)).status_code == 200
    assert [path for path, _ in seen] == ["/api/auth/info", "/api/check/team%2Fwine"]
    for _, headers in seen:
        assert headers.get("x-gitlab-token") == token
        assert "authorization" not in headers and "cookie" not in headers


def test_session_cookie_is_forwarded_for_browsers(api, projects, seen, wine):
    token = projects.token(project=WINE, level=2)
    cookie = projects.cookie_for(token)
    api.client.cookies["sharinghub-session"] = cookie
    response = get(api, f"{API}/experiments/get", {"experiment_id": wine.experiment_id}, **BROWSER_UA)
    assert response.status_code == 200, response.content
    assert seen, "SharingHub was not asked"
    for _, headers in seen:
        assert f"sharinghub-session={cookie}" in headers.get("cookie", "")
        assert "x-gitlab-token" not in headers


def test_a_write_another_site_made_with_the_session_cookie_is_refused(api, projects, wine):
    """The cookie rides along on whatever a browser sends; Sec-Fetch-Site says another site's page sent it."""
    developer = projects.token(project=WINE, level=3)
    api.client.cookies["sharinghub-session"] = projects.cookie_for(developer)
    cross_site = {**BROWSER_UA, "HTTP_SEC_FETCH_SITE": "cross-site"}
    tag = {"run_id": wine.run_id, "key": "from", "value": "elsewhere"}
    assert post(api, f"{API}/runs/set-tag", tag, **cross_site).status_code == 403

    def upload(**headers):
        return api.client.generic("POST", f"{view_prefix(WINE)}/ajax-api/2.0/mlflow/upload-artifact?"
                                  + urlencode({"run_uuid": wine.run_id, "path": "planted.html"}),
                                  b"<script>1</script>", content_type="text/plain", **headers)

    def listed():
        listing = get(api, f"{API}/artifacts/list", {"run_id": wine.run_id}, **BROWSER_UA)
        return [entry["path"] for entry in listing.json().get("files", [])]

    assert upload(**cross_site).status_code == 403
    assert not Run.objects.get(run_uuid=wine.run_id).tags.filter(key="from").exists()
    assert "planted.html" not in listed()
    # reads from anywhere, writes from the UI's own pages, and bearer tokens (never sent by themselves) go through
    assert get(api, f"{API}/runs/get", {"run_id": wine.run_id}, **cross_site).status_code == 200
    same_origin = {**BROWSER_UA, "HTTP_SEC_FETCH_SITE": "same-origin"}
    assert post(api, f"{API}/runs/set-tag", tag, **same_origin).status_code == 200
    assert upload(**same_origin).status_code == 200
    assert "planted.html" in listed()
    api.client.cookies.clear()
    assert post(api, f"{API}/runs/set-tag", tag, **bearer(developer), HTTP_SEC_FETCH_SITE="cross-site").status_code == 200


def test_the_session_cookie_name_is_configurable(api, projects, seen, wine, settings, monkeypatch):
    settings.SHARINGHUB_SESSION_COOKIE = "sh-session"
    monkeypatch.setattr(projects, "cookie_name", "sh-session")
    cookie = projects.cookie_for(projects.token(project=WINE, level=2))
    api.client.cookies["sharinghub-session"] = "ignored"
    api.client.cookies["sh-session"] = cookie
    response = get(api, f"{API}/experiments/get", {"experiment_id": wine.experiment_id}, **BROWSER_UA)
    assert response.status_code == 200, response.content
    assert all(f"sh-session={cookie}" in headers.get("cookie", "") for _, headers in seen)


def test_bearer_wins_over_the_cookie(api, projects, seen, wine):
    reader = projects.token(project=WINE, level=2)
    api.client.cookies["sharinghub-session"] = projects.cookie_for(projects.token(project=WINE, level=4))
    response = post(api, f"{API}/runs/create", {"experiment_id": wine.experiment_id}, **bearer(reader))
    assert response.status_code == 403  # the reporter's token decides, not the developer's cookie
    assert all(headers.get("x-gitlab-token") == reader and "cookie" not in headers for _, headers in seen)


def test_default_token_mode_accepts_anonymous_callers_as_sharinghub_default_identity(api, projects, seen, wine, settings):
    settings.SHARINGHUB_AUTH_DEFAULT_TOKEN = True
    projects.set_access(DEFAULT_TOKEN_IDENTITY, WINE, 2)
    response = get(api, f"{API}/experiments/get", {"experiment_id": wine.experiment_id}, **MLFLOW_UA)
    assert response.status_code == 200, response.content
    assert [path for path, _ in seen] == ["/api/check/team%2Fwine"]  # no /api/auth/info
    _, headers = seen[0]
    assert "x-gitlab-token" not in headers and "cookie" not in headers and "authorization" not in headers
    # read-only identity: no writes
    assert post(api, f"{API}/runs/create", {"experiment_id": wine.experiment_id}, **MLFLOW_UA).status_code == 403


def test_without_default_token_mode_anonymous_callers_are_401(api, projects, seen, wine):
    projects.set_access(DEFAULT_TOKEN_IDENTITY, WINE, 2)
    response = get(api, f"{API}/experiments/get", {"experiment_id": wine.experiment_id}, **MLFLOW_UA)
    assert response.status_code == 401
    assert seen == []  # nothing to ask: there is no credential


def test_basic_auth_is_not_accepted(api, projects, seen, wine):
    import base64

    token = projects.token(project=WINE, level=4)
    basic = base64.b64encode(f"user:{token}".encode()).decode()
    response = get(api, f"{API}/experiments/get", {"experiment_id": wine.experiment_id},
                   HTTP_AUTHORIZATION=f"Basic {basic}", **MLFLOW_UA)
    assert response.status_code == 401
    assert seen == []


def test_an_invalid_token_is_401(api, projects, wine):
    response = get(api, f"{API}/experiments/get", {"experiment_id": wine.experiment_id}, **bearer("forged"), **MLFLOW_UA)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="mlflow"'


# --- §6.2 unauthenticated callers ----------------------------------------------------------------------------


@pytest.mark.parametrize("view", [WINE, None])
def test_unauthenticated_mlflow_client_gets_401_text(api, projects, view):
    response = get(api, f"{API}/experiments/search", {"max_results": 5}, view=view, **MLFLOW_UA)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="mlflow"'
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == NOT_AUTHENTICATED


def test_unauthenticated_browser_gets_the_401_login_page(api, projects):
    response = get(api, f"{API}/experiments/search", {"max_results": 5}, **BROWSER_UA)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("text/html")
    assert b"/team/wine/tracking/auth/login" in response.content


@pytest.mark.parametrize(("view", "login"), [(WINE, "/team/wine/tracking/auth/login"), (None, "/auth/login")])
def test_unauthenticated_browser_is_redirected_with_login_auto_redirect(api, projects, settings, view, login):
    settings.LOGIN_AUTO_REDIRECT = True
    response = get(api, f"{API}/experiments/search", {"max_results": 5}, view=view, **BROWSER_UA)
    assert response.status_code == 302
    # ... with the page asked for, to come back to after the login
    asked = f"{view_prefix(view)}{API}/experiments/search?max_results=5"
    assert response["Location"] == f"{login}?{urlencode({'next': asked})}"
    ajax = get(api, f"{API}/experiments/search", view=view, HTTP_USER_AGENT="Mozilla/5.0", HTTP_ACCEPT="*/*")
    assert ajax["Location"] == login  # not a page: nothing to come back to
    # the MLflow client still gets its 401
    assert get(api, f"{API}/experiments/search", view=view, **MLFLOW_UA).status_code == 401


def test_login_auto_redirect_keeps_the_ingress_prefix(api, projects, settings):
    """§6.2 / §8.5: the login route is <X-Script-Name>[/<project>/tracking]/auth/login behind the ingress."""
    settings.LOGIN_AUTO_REDIRECT = True
    response = get(api, f"{API}/experiments/search", HTTP_X_SCRIPT_NAME="/mlflow", **BROWSER_UA)
    assert response.status_code == 302
    assert response["Location"] == ("/mlflow/team/wine/tracking/auth/login?"
                                    f"{urlencode({'next': f'/mlflow/team/wine/tracking{API}/experiments/search'})}")


# --- §6.3 login ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "query", "redirect"), [
    ("/team/wine/tracking/auth/login", {}, "http://testserver/team/wine/tracking/"),
    ("/auth/login", {"project": "team/wine"}, "http://testserver/team/wine/tracking/"),
    ("/auth/login", {}, "http://testserver/"),
])
def test_login_redirects_to_sharinghub_with_the_view_url(api, projects, path, query, redirect):
    response = api.client.get(path, query, **BROWSER_UA)
    assert response.status_code == 302
    assert response["Location"] == f"{projects.url}/api/auth/login?{urlencode({'redirect_uri': redirect})}"


def test_login_redirect_uri_is_the_external_url_behind_the_ingress(api, projects):
    """§2.1/§8.5: X-Forwarded-Proto gives the scheme, X-Script-Name the prefix of every generated URL."""
    response = api.client.get("/team/wine/tracking/auth/login", HTTP_X_SCRIPT_NAME="/mlflow",
                              HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="sharinghub.example.com", **BROWSER_UA)
    assert response.status_code == 302
    expected = urlencode({"redirect_uri": "https://sharinghub.example.com/mlflow/team/wine/tracking/"})
    assert response["Location"] == f"{projects.url}/api/auth/login?{expected}"


@pytest.mark.parametrize(("auto_redirect", "location"), [(False, "http://testserver/team/wine/tracking/"),
                                                         (True, "/team/wine/tracking/auth/")])
def test_logout_redirects(api, projects, settings, auto_redirect, location):
    settings.LOGIN_AUTO_REDIRECT = auto_redirect
    response = api.client.get("/team/wine/tracking/auth/logout", **BROWSER_UA)
    assert response.status_code == 302
    assert response["Location"] == location


# --- §4.3 checker answers --------------------------------------------------------------------------------------


def test_the_required_category_is_sharinghub_stac_collection(api, projects, wine, settings):
    settings.SHARINGHUB_STAC_COLLECTION = "model-zoo"
    token = projects.token(project=WINE, level=2)
    assert get(api, f"{API}/runs/get", {"run_id": wine.run_id}, **bearer(token)).status_code == 403  # ai-model only
    projects.add_project(WINE, 42, ["ai-model", "model-zoo"])
    cache.clear()
    assert get(api, f"{API}/runs/get", {"run_id": wine.run_id}, **bearer(token)).status_code == 200


@pytest.mark.parametrize("categories", [["dataset"], []], ids=["category-missing", "500-category-not-found"])
def test_projects_outside_the_collection_are_not_found(api, projects, wine, categories):
    projects.add_project(WINE, 42, categories)
    token = projects.token(project=WINE, level=4)
    response = get(api, f"{API}/experiments/get", {"experiment_id": wine.experiment_id}, **bearer(token))
    assert response.status_code == 403, response.content
    response = post(api, f"{API}/experiments/create", {"name": "new (42)"}, **bearer(token))
    assert response.status_code == 403


def test_checker_404_is_no_access(api, projects, wine):
    token = projects.token(project=BEER, level=4)  # valid, but team/wine is invisible to it
    response = get(api, f"{API}/experiments/get", {"experiment_id": wine.experiment_id}, **bearer(token))
    assert response.status_code == 403


def test_checker_401_is_the_unauthenticated_answer(api, projects, wine, monkeypatch):
    original = projects.answer

    def answer(path, query, headers):
        if path.startswith("/api/check/"):
            return 401, {"detail": "HTTP 401 | POST gitlab/api/graphql: 401 Unauthorized"}
        return original(path, query, headers)

    monkeypatch.setattr(projects, "answer", answer)
    token = projects.token(project=WINE, level=4)
    response = get(api, f"{API}/experiments/get", {"experiment_id": wine.experiment_id}, **bearer(token), **MLFLOW_UA)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="mlflow"'


# --- faults: fail closed, 503, nothing written, back without restart -------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: connections are refused


@pytest.mark.parametrize("fault", ["500", "502", "slow", "refused"])
def test_sharinghub_faults_are_503_and_nothing_is_written(api, projects, wine, settings, fault, caplog):
    caplog.set_level("DEBUG")
    token = projects.token(user=f"secret-{uuid.uuid4().hex}", project=WINE, level=4)
    settings.PERMISSION_READ_TIMEOUT = 0.3
    url = settings.SHARINGHUB_URL
    if fault == "slow":
        projects.slow(1.0)
    elif fault == "refused":
        settings.SHARINGHUB_URL = f"http://127.0.0.1:{_closed_port()}"
    else:
        projects.fail(int(fault))
    counts = (Experiment.objects.count(), Run.objects.count(), Metric.objects.count())
    writes = [
        (f"{API}/experiments/create", {"name": "new (42)"}),
        (f"{API}/runs/create", {"experiment_id": wine.experiment_id}),
        (f"{API}/runs/log-batch", {"run_id": wine.run_id, "metrics": [{"key": "x", "value": 1, "timestamp": 1}]}),
    ]
    for path, body in writes:
        started = time.monotonic()
        response = post(api, path, body, **bearer(token), **MLFLOW_UA)
        assert response.status_code == 503, (fault, path, response.status_code, response.content)
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert time.monotonic() - started < 3.0  # short timeouts: a slow SharingHub does not hold the request
    assert (Experiment.objects.count(), Run.objects.count(), Metric.objects.count()) == counts
    read = get(api, f"{API}/runs/get", {"run_id": wine.run_id}, **bearer(token))
    assert read.status_code == 503  # reads are not granted by default either
    assert token not in caplog.text  # §3.1: tokens are never logged

    projects.reset_faults()
    settings.SHARINGHUB_URL = url
    for path, body in writes:
        response = post(api, path, body, **bearer(token))
        assert response.status_code == 200, (path, response.content)


def test_faults_are_not_cached(api, projects, wine):
    token = projects.token(project=WINE, level=4)
    projects.fail(500)
    assert get(api, f"{API}/runs/get", {"run_id": wine.run_id}, **bearer(token)).status_code == 503
    projects.reset_faults()
    assert get(api, f"{API}/runs/get", {"run_id": wine.run_id}, **bearer(token)).status_code == 200


# --- §5.7 cache ----------------------------------------------------------------------------------------------------


def test_second_request_asks_sharinghub_nothing(api, projects, wine):
    token = projects.token(project=WINE, level=4)
    assert get(api, f"{API}/runs/get", {"run_id": wine.run_id}, **bearer(token)).status_code == 200
    calls = len(projects.state.calls)
    assert calls == 2
    for _ in range(3):
        assert get(api, f"{API}/runs/get", {"run_id": wine.run_id}, **bearer(token)).status_code == 200
        assert post(api, f"{API}/runs/set-tag", {"run_id": wine.run_id, "key": "a", "value": "b"},
                    **bearer(token)).status_code == 200
    assert len(projects.state.calls) == calls


def test_a_denial_is_cached_too_and_a_changed_level_is_seen_after_the_ttl(api, projects, wine, settings):
    settings.PROJECT_CACHE_TIMEOUT = 1
    settings.SHARINGHUB_AUTH_CACHE_TIMEOUT = 1
    token = projects.token(project=WINE, level=2)
    body = {"run_id": wine.run_id, "key": "a", "value": "b"}
    assert post(api, f"{API}/runs/set-tag", body, **bearer(token)).status_code == 403
    projects.set_access(token, WINE, 3)  # promoted in GitLab
    assert post(api, f"{API}/runs/set-tag", body, **bearer(token)).status_code == 403  # cached for the TTL
    calls = list(projects.state.calls)
    time.sleep(1.1)
    assert post(api, f"{API}/runs/set-tag", body, **bearer(token)).status_code == 200
    assert projects.state.calls[len(calls):] == ["/api/auth/info", "/api/check/team%2Fwine"]


def _locmem_keys() -> list[str]:
    if not hasattr(cache, "_cache"):
        pytest.skip("CACHE_URL names Redis: see test_redis_cache_is_shared_and_holds_no_token")
    return list(cache._cache.keys())


def test_cache_keys_never_hold_the_token_or_cookie(api, projects, wine):
    token = projects.token(user=f"secret-{uuid.uuid4().hex}", project=WINE, level=4)
    cookie_token = projects.token(user=f"other-secret-{uuid.uuid4().hex}", project=WINE, level=2)
    cookie = projects.cookie_for(cookie_token)
    assert get(api, f"{API}/runs/get", {"run_id": wine.run_id}, **bearer(token)).status_code == 200
    api.client.cookies["sharinghub-session"] = cookie
    assert get(api, f"{API}/runs/get", {"run_id": wine.run_id}, **BROWSER_UA).status_code == 200
    keys = _locmem_keys()
    assert len(keys) >= 4, keys
    for key in keys:
        for secret in (token, cookie_token, cookie, WINE):
            assert secret not in key, key
    for value in cache._cache.values():
        for secret in (token.encode(), cookie.encode()):
            assert secret not in value


@pytest.fixture
def redis_cache(settings):
    """CACHE_URL=redis://127.0.0.1:6379/15, with a key prefix of its own (only its own keys are removed)."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/15")
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"perm-test-{uuid.uuid4().hex}"
    settings.CACHES = {"default": {**cache_from_url("redis://127.0.0.1:6379/15", variable="CACHE_URL"), "KEY_PREFIX": prefix}}
    yield client, prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_redis_cache_is_shared_and_holds_no_token(api, projects, wine, redis_cache):
    from django.core.cache.backends.redis import RedisCache

    client, prefix = redis_cache
    token = projects.token(user=f"secret-{uuid.uuid4().hex}", project=WINE, level=4)
    assert get(api, f"{API}/runs/get", {"run_id": wine.run_id}, **bearer(token)).status_code == 200
    keys = [key.decode() for key in client.scan_iter(f"{prefix}:*") if not key.endswith(b":mlflow-sh:generation")]
    assert len(keys) == 2, keys  # authentication and the project's access level
    assert not any(token in key or WINE in key for key in keys), keys
    # another worker (its own connection, same CACHE_URL) finds the answers: SharingHub is not asked again
    other_worker = RedisCache("redis://127.0.0.1:6379/15", {"KEY_PREFIX": prefix})
    stored = {key.split(":", 2)[2] for key in keys}
    assert all(other_worker.get(key) is not None for key in stored), stored
    calls = len(projects.state.calls)
    from django.core.cache import caches

    caches["default"].close()
    assert get(api, f"{API}/runs/get", {"run_id": wine.run_id}, **bearer(token)).status_code == 200
    assert len(projects.state.calls) == calls


# --- §5.2/§5.4 the project tag -----------------------------------------------------------------------------------


@pytest.fixture
def developer(projects):
    token = projects.token(project=WINE, level=4)
    projects.set_access(token, BEER, 4)
    return token


@pytest.mark.parametrize(("path", "method", "body"), [
    ("experiments/set-experiment-tag", "POST", {"key": "project", "value": "other/beer"}),
    ("experiments/delete-experiment-tag", "POST", {"key": "project"}),
    ("registered-models/set-tag", "POST", {"key": "project", "value": "other/beer"}),
    ("registered-models/delete-tag", "DELETE", {"key": "project"}),
])
@pytest.mark.parametrize("view", [WINE, None])
def test_the_project_tag_cannot_be_set_or_deleted(api, wine, developer, path, method, body, view):
    target = {"experiment_id": wine.experiment_id} if path.startswith("experiments") else {"name": wine.model_name}
    response = post(api, f"{API}/{path}", {**target, **body}, view=view, method=method, **bearer(developer))
    assert response.status_code == 403, response.content
    assert Experiment.objects.get(pk=wine.experiment_id).project == WINE
    assert ExperimentTag.objects.get(experiment_id=wine.experiment_id, key="project").value == WINE
    assert RegisteredModelTag.objects.get(registered_model__name=wine.model_name, key="project").value == WINE
    # other tags are fine
    other = {**body, "key": "team"}
    assert post(api, f"{API}/{path}", {**target, **other}, view=view, method=method,
                **bearer(developer)).status_code in (200, 404)


def test_a_project_tag_in_the_create_request_is_overwritten(api, projects, developer):
    tags = [{"key": "project", "value": BEER}, {"key": "team", "value": "a"}]
    body = ok(post(api, f"{API}/experiments/create", {"name": "tagged (42)", "tags": tags}, **bearer(developer)))
    experiment = Experiment.objects.get(pk=body["experiment_id"])
    assert experiment.project == WINE
    assert dict(ExperimentTag.objects.filter(experiment=experiment).values_list("key", "value")) == {
        "project": WINE, "team": "a"}
    ok(post(api, f"{API}/registered-models/create", {"name": "tagged-model (42)", "tags": tags}, **bearer(developer)))
    model = RegisteredModel.objects.get(name="tagged-model (42)")
    assert model.project == WINE
    assert dict(RegisteredModelTag.objects.filter(registered_model=model).values_list("key", "value")) == {
        "project": WINE, "team": "a"}


def test_creation_needs_project_view_suffix_and_developer(api, projects, developer):
    reporter = projects.token(project=WINE, level=2)
    for path, name in (("experiments/create", "x"), ("registered-models/create", "x-model")):
        assert post(api, f"{API}/{path}", {"name": f"{name} (42)"}, view=None, **bearer(developer)).status_code == 403
        assert post(api, f"{API}/{path}", {"name": name}, **bearer(developer)).status_code == 403
        assert post(api, f"{API}/{path}", {"name": f"{name} (7)"}, **bearer(developer)).status_code == 403
        assert post(api, f"{API}/{path}", {"name": f"{name}(42)"}, **bearer(developer)).status_code == 403  # no space
        assert post(api, f"{API}/{path}", {"name": f"{name} (42)"}, **bearer(reporter)).status_code == 403
        assert post(api, f"{API}/{path}", {"name": f"{name} (42)"}, **bearer(developer)).status_code == 200
    assert post(api, f"{API}/experiments/create", {"name": "b (7)"}, view=BEER, **bearer(developer)).status_code == 200


# --- §5.3 renames keep the suffix ----------------------------------------------------------------------------------


@pytest.mark.parametrize("view", [WINE, None])
@pytest.mark.parametrize(("new_name", "status"), [("renamed (7)", 403), ("renamed", 403), ("renamed(42)", 403),
                                                  ("renamed (42)", 200)])
def test_experiment_rename_keeps_the_suffix(api, wine, developer, view, new_name, status):
    response = post(api, f"{API}/experiments/update", {"experiment_id": wine.experiment_id, "new_name": new_name},
                    view=view, **bearer(developer))
    assert response.status_code == status, response.content


@pytest.mark.parametrize("view", [WINE, None])
@pytest.mark.parametrize(("new_name", "status"), [("renamed-model (7)", 403), ("renamed-model", 403),
                                                  ("renamed-model (42)", 200)])
def test_registered_model_rename_keeps_the_suffix(api, wine, developer, view, new_name, status):
    """Defect 4 of §10: the original did not check renames of registered models."""
    response = post(api, f"{API}/registered-models/rename", {"name": wine.model_name, "new_name": new_name},
                    view=view, **bearer(developer))
    assert response.status_code == status, response.content


# --- model versions made from another project's run -------------------------------------------------------------


def _version_count(name: str) -> int:
    return ModelVersion.objects.filter(registered_model__name=name).count()


@pytest.mark.parametrize("source_kind", ["runs", "runs-without-run-id", "run_id", "logged-model", "mlflow-artifacts",
                                         "models-by-name"])
def test_create_model_version_from_another_projects_run_is_403(api, wine, beer, developer, source_kind):
    """Even for a member of both projects, in the project view (§5.5)."""
    body = {
        "runs": {"source": f"runs:/{beer.run_id}/model", "run_id": beer.run_id},
        "runs-without-run-id": {"source": f"runs:/{beer.run_id}/model"},
        "run_id": {"source": f"mlflow-artifacts:/{wine.experiment_id}/{wine.run_id}/artifacts/model", "run_id": beer.run_id},
        "logged-model": {"source": f"models:/{beer.logged_model_id}", "model_id": beer.logged_model_id},
        "mlflow-artifacts": {"source": f"mlflow-artifacts:/{beer.experiment_id}/{beer.run_id}/artifacts/model"},
        "models-by-name": {"source": f"models:/{beer.model_name}/1"},
    }[source_kind]
    before = _version_count(wine.model_name)
    response = post(api, f"{API}/model-versions/create", {"name": wine.model_name, **body}, **bearer(developer))
    assert response.status_code == 403, response.content
    assert _version_count(wine.model_name) == before


@pytest.mark.parametrize("source", [
    "RUNS:/{run}/model",
    "Mlflow-Artifacts:/{exp}/{run}/artifacts/model",
    "http://sharinghub.example.com/mlflow/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/model",
    "MODELS:/{model}/1",
    "Models:/{model}/1",
], ids=["upper-case-runs", "mixed-case-mlflow-artifacts", "http-proxy-url", "upper-case-models", "mixed-case-models"])
def test_no_source_spelling_reaches_another_projects_files(api, wine, beer, projects, source):
    """What the registry resolves a source to, the permission check must see too: a wine developer who cannot
    see other/beer must not register (and then download through model-versions/get-artifact) beer's model."""
    developer = projects.token(project=WINE, level=4)
    spelled = source.format(run=beer.run_id, exp=beer.experiment_id, model=beer.model_name)
    response = post(api, f"{API}/model-versions/create", {"name": wine.model_name, "source": spelled},
                    **bearer(developer))
    leaked = None
    if response.status_code == 200:
        version = response.json()["model_version"]["version"]
        download = get(api, "/model-versions/get-artifact", {"name": wine.model_name, "version": version,
                                                             "path": "MLmodel"}, **bearer(developer))
        leaked = download.status_code == 200 and b"".join(download.streaming_content)
    assert response.status_code in (400, 403), (response.status_code, response.content, "downloaded:", leaked)


def test_create_model_version_in_the_global_view_needs_read_on_the_source(api, wine, beer, projects):
    wine_only = projects.token(project=WINE, level=4)
    body = {"name": wine.model_name, "source": f"runs:/{beer.run_id}/model", "run_id": beer.run_id}
    assert post(api, f"{API}/model-versions/create", body, view=None, **bearer(wine_only)).status_code == 403
    body = {"name": wine.model_name, "source": f"runs:/{wine.run_id}/model", "run_id": wine.run_id}
    response = post(api, f"{API}/model-versions/create", body, view=None, **bearer(wine_only))
    assert response.status_code == 200, response.content


def test_experiment_artifact_location_cannot_point_into_another_experiment(api, beer, projects):
    """Runs of an experiment created with artifact_location=mlflow-artifacts:/<beer id>/... would write into
    beer's artifact tree (the proxy authorises artifact paths by their leading experiment id)."""
    developer = projects.token(project=WINE, level=4)
    location = f"mlflow-artifacts:/{beer.experiment_id}/{beer.run_id}/artifacts"
    response = post(api, f"{API}/experiments/create", {"name": "sneaky (42)", "artifact_location": location},
                    **bearer(developer))
    assert response.status_code in (400, 403), response.content


# --- §2.2 project paths with a `tracking` segment --------------------------------------------------------------------


@pytest.mark.parametrize(("path", "expected"), [
    ("/api/2.0/mlflow/runs/get", (None, "/api/2.0/mlflow/runs/get")),
    ("/health", (None, "/health")),
    ("/team/wine/tracking/", ("team/wine", "/")),
    ("/team/wine/tracking", ("team/wine", "/")),
    ("/team/wine/tracking/api/2.0/mlflow/runs/get", ("team/wine", "/api/2.0/mlflow/runs/get")),
    ("/a/b/c/d/tracking/get-artifact", ("a/b/c/d", "/get-artifact")),
    ("/g/tracking/model-versions/get-artifact", ("g", "/model-versions/get-artifact")),
    ("/g/tracking/ajax-api/2.0/mlflow/runs/search", ("g", "/ajax-api/2.0/mlflow/runs/search")),
    ("/g/tracking/auth/login", ("g", "/auth/login")),
    ("/group/tracking/model/tracking/api/2.0/mlflow/runs/get", ("group/tracking/model", "/api/2.0/mlflow/runs/get")),
    ("/group/tracking/model/tracking/", ("group/tracking/model", "/")),
    ("/tracking/model/tracking/health", ("tracking/model", "/health")),
    ("/group/tracking/tracking/api/2.0/x", ("group/tracking", "/api/2.0/x")),
    ("/group/tracking/model", (None, "/group/tracking/model")),  # no route follows: not a view
    ("/tracking/api/2.0/mlflow/runs/get", (None, "/tracking/api/2.0/mlflow/runs/get")),  # no project before it
])
def test_split_project_view(path, expected):
    assert split_project_view(path) == expected


def test_a_project_path_with_a_tracking_segment_routes_right(api, projects, seen):
    projects.add_project("group/tracking/model", 77)
    token = projects.token(project="group/tracking/model", level=3)
    body = ok(post(api, f"{API}/experiments/create", {"name": "t (77)"}, view="group/tracking/model", **bearer(token)))
    assert Experiment.objects.get(pk=body["experiment_id"]).project == "group/tracking/model"
    assert ("/api/check/" + quote("group/tracking/model", safe="")) in [path for path, _ in seen]
    run = ok(post(api, f"{API}/runs/create", {"experiment_id": body["experiment_id"]}, view="group/tracking/model",
                  **bearer(token)))
    assert run["run"]["info"]["experiment_id"] == body["experiment_id"]


def test_an_artifact_path_with_a_tracking_segment_stays_in_its_project(api, projects, wine):
    """§2.2: the longest split wins only if that project exists; here `team/wine/tracking/api/...artifacts`
    is no project, so the request is team/wine's upload of `tracking/api/notes.txt`."""
    token = projects.token(project=WINE, level=3)
    path = (f"/{WINE}/tracking/api/2.0/mlflow-artifacts/artifacts/{wine.experiment_id}/{wine.run_id}/artifacts/"
            "tracking/api/notes.txt")
    response = api.client.generic("PUT", path, b"notes", content_type="text/plain", **bearer(token))
    assert response.status_code == 200, (response.status_code, response.content)
