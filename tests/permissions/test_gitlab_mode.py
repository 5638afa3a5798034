"""GitLab mode (sharinghub.md §3.2, §5.1, §7) against the GitLab double: Bearer tokens forwarded as Bearer,
role = max(project, group) access on GitLab's 0/5/10/20/30/40/50 scale, mandatory topics, the authentication
cache (defect 3 of §10), faults, and the OIDC browser login with the token kept in the server-side session."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.cache import cache

from tests.doubles.gitlab import DEVELOPER, GUEST, MAINTAINER, MINIMAL, OWNER, REPORTER, GitLabDouble
from tests.permissions.worlds import WINE, bearer, build_side, view_prefix

API = "/api/2.0/mlflow"
MLFLOW_UA = {"HTTP_USER_AGENT": "mlflow-python-client/3.18.0"}
BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 Firefox/140.0",
           "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture(scope="module")
def gitlab_server():
    double = GitLabDouble().start()
    yield double
    double.stop()


@pytest.fixture
def gitlab(gitlab_server, settings):
    """GitLab mode against a fresh double (SHARINGHUB_URL set too: GitLab wins), nothing cached."""
    from tests.doubles.gitlab import GitLabState

    gitlab_server.state = GitLabState()
    gitlab_server.add_project(WINE, 42)
    settings.PERMISSION_MODE = "gitlab"
    settings.GITLAB_URL = gitlab_server.url
    settings.SHARINGHUB_URL = "http://127.0.0.1:9"  # must never be called in GitLab mode
    settings.GITLAB_OAUTH_CLIENT_ID = gitlab_server.state.client_id
    settings.GITLAB_OAUTH_CLIENT_SECRET = gitlab_server.state.client_secret
    settings.GITLAB_MANDATORY_TOPICS = []
    settings.LOGIN_AUTO_REDIRECT = False
    cache.clear()
    yield gitlab_server
    cache.clear()


@pytest.fixture
def wine(api, gitlab, settings):
    settings.PERMISSION_MODE = "open"
    side = build_side(api, WINE, "wine (42)", "wine-model (42)")
    settings.PERMISSION_MODE = "gitlab"
    return side


def read(api, wine, view=WINE, **headers):
    return api.client.get(f"{view_prefix(view)}{API}/runs/get", {"run_id": wine.run_id}, **headers)


def write(api, wine, view=WINE, **headers):
    return api.request("POST", f"{view_prefix(view)}{API}/runs/set-tag",
                       {"run_id": wine.run_id, "key": "a", "value": "b"}, **headers)


def create(api, name="new (42)", view=WINE, **headers):
    return api.request("POST", f"{view_prefix(view)}{API}/experiments/create", {"name": name}, **headers)


# --- credentials -----------------------------------------------------------------------------------------------


def test_bearer_token_is_forwarded_as_bearer(api, gitlab, wine):
    token = gitlab.token(project=WINE, project_access=DEVELOPER)
    assert read(api, wine, **bearer(token)).status_code == 200
    assert [path for _, path, _ in gitlab.state.requests] == ["/api/v4/user", "/api/v4/projects/team%2Fwine"]
    for _, _, headers in gitlab.state.requests:
        assert headers.get("Authorization") == f"Bearer {token}"
        assert "X-Gitlab-Token" not in headers


def test_project_lookup_asks_for_the_simple_representation(api, gitlab, wine, monkeypatch):
    queries = []
    original = gitlab.answer

    def answer(method, path, query, headers, form):
        queries.append((path, query))
        return original(method, path, query, headers, form)

    monkeypatch.setattr(gitlab, "answer", answer)
    token = gitlab.token(project=WINE, project_access=REPORTER)
    assert read(api, wine, **bearer(token)).status_code == 200
    assert ("/api/v4/projects/team%2Fwine", {"simple": ["true"]}) in queries


def test_no_credential_is_401_and_there_is_no_default_token_mode(api, gitlab, wine, settings):
    settings.SHARINGHUB_AUTH_DEFAULT_TOKEN = True  # a SharingHub setting: no effect in GitLab mode
    response = read(api, wine, **MLFLOW_UA)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="mlflow"'
    assert gitlab.state.calls == []


def test_unknown_token_is_401(api, gitlab, wine):
    assert read(api, wine, **bearer("glpat-forged"), **MLFLOW_UA).status_code == 401


# --- role = max(project access, group access) --------------------------------------------------------------------


@pytest.mark.parametrize(("project_access", "group_access", "can_read", "can_write"), [
    (None, None, False, False),
    (MINIMAL, None, False, False),
    (GUEST, None, True, False),
    (None, GUEST, True, False),
    (REPORTER, None, True, False),
    (DEVELOPER, None, True, True),
    (None, DEVELOPER, True, True),
    (GUEST, MAINTAINER, True, True),
    (MAINTAINER, REPORTER, True, True),
    (OWNER, None, True, True),
    (None, OWNER, True, True),
])
def test_role_is_the_higher_of_project_and_group_access(api, gitlab, wine, project_access, group_access, can_read,
                                                        can_write):
    token = gitlab.token(project=WINE, project_access=project_access, group_access=group_access)
    assert read(api, wine, **bearer(token)).status_code == (200 if can_read else 403)
    assert write(api, wine, **bearer(token)).status_code == (200 if can_write else 403)
    assert create(api, **bearer(token)).status_code == (200 if can_write else 403)


def test_not_a_member_is_no_access(api, gitlab, wine):
    outsider = gitlab.token()  # valid token, GitLab answers 404 for the project
    assert read(api, wine, **bearer(outsider)).status_code == 403
    assert create(api, **bearer(outsider)).status_code == 403


def test_creation_uses_the_gitlab_project_id_as_suffix(api, gitlab, wine):
    token = gitlab.token(project=WINE, project_access=MAINTAINER)
    assert create(api, "x (7)", **bearer(token)).status_code == 403
    assert create(api, "x (42)", view=None, **bearer(token)).status_code == 403
    assert create(api, "x (42)", **bearer(token)).status_code == 200


# --- mandatory topics -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mandatory", "topics", "visible"), [
    (["sharinghub:aimodel"], ["sharinghub:aimodel"], True),
    (["sharinghub:aimodel"], ["sharinghub:aimodel", "other"], True),
    (["sharinghub:aimodel"], [], False),
    (["sharinghub:aimodel"], ["sharinghub:dataset"], False),
    (["sharinghub:aimodel", "mlflow"], ["sharinghub:aimodel"], False),
    (["sharinghub:aimodel", "mlflow"], ["mlflow", "sharinghub:aimodel"], True),
    ([], [], True),
])
def test_mandatory_topics(api, gitlab, wine, settings, mandatory, topics, visible):
    settings.GITLAB_MANDATORY_TOPICS = mandatory
    gitlab.add_project(WINE, 42, topics)
    token = gitlab.token(project=WINE, project_access=MAINTAINER)
    assert read(api, wine, **bearer(token)).status_code == (200 if visible else 403)


# --- cache --------------------------------------------------------------------------------------------------------


def test_the_authentication_cache_is_written(api, gitlab, wine):
    """Defect 3 of §10: the original read the cache but never wrote it, calling /api/v4/user every time."""
    token = gitlab.token(project=WINE, project_access=DEVELOPER)
    for _ in range(3):
        assert read(api, wine, **bearer(token)).status_code == 200
        assert write(api, wine, **bearer(token)).status_code == 200
    assert gitlab.calls_to("/api/v4/user") == 1
    assert gitlab.calls_to("/api/v4/projects/") == 1


def test_cache_keys_hold_no_token(api, gitlab, wine):
    token = gitlab.token(user="glpat-very-secret-value", project=WINE, project_access=DEVELOPER)
    assert read(api, wine, **bearer(token)).status_code == 200
    if not hasattr(cache, "_cache"):
        pytest.skip("the cache is not LocMemCache (CACHE_URL set)")
    keys = list(cache._cache.keys())
    assert keys and not any(token in key for key in keys), keys


# --- upstream answers and faults ----------------------------------------------------------------------------------


def test_gitlab_401_on_the_project_is_the_unauthenticated_answer(api, gitlab, wine, monkeypatch):
    original = gitlab.answer

    def answer(method, path, query, headers, form):
        if path.startswith("/api/v4/projects/"):
            return 401, {"message": "401 Unauthorized"}, {}
        return original(method, path, query, headers, form)

    monkeypatch.setattr(gitlab, "answer", answer)
    token = gitlab.token(project=WINE, project_access=DEVELOPER)
    response = read(api, wine, **bearer(token), **MLFLOW_UA)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="mlflow"'


@pytest.mark.parametrize("fault", ["500", "slow"])
def test_gitlab_faults_are_503_then_work_again(api, gitlab, wine, settings, fault):
    from tracking.models import Experiment

    settings.PERMISSION_READ_TIMEOUT = 0.3
    token = gitlab.token(project=WINE, project_access=DEVELOPER)
    if fault == "slow":
        gitlab.slow(1.0)
    else:
        gitlab.fail(500)
    before = Experiment.objects.count()
    response = create(api, **bearer(token))
    assert response.status_code == 503, response.content
    assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert Experiment.objects.count() == before
    gitlab.reset_faults()
    assert create(api, **bearer(token)).status_code == 200


# --- OIDC browser login (§7.3) ----------------------------------------------------------------------------------


def login(api, gitlab, user_token: str, start: str = "/team/wine/tracking/auth/login"):
    """The browser's round trip: our login → GitLab authorize → our /auth/authorize; returns the last answer."""
    gitlab.sign_in(user_token)
    response = api.client.get(start, **BROWSER)
    assert response.status_code == 302, response.content
    authorize_url = response["Location"]
    assert authorize_url.startswith(f"{gitlab.url}/oauth/authorize?"), authorize_url
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    assert query["client_id"] == gitlab.state.client_id
    assert query["response_type"] == "code"
    assert set(query["scope"].split()) >= {"openid", "email", "read_user", "profile", "api"}
    assert query["redirect_uri"] == "http://testserver/auth/authorize"  # without the project prefix
    back = requests.get(authorize_url, allow_redirects=False, timeout=5)  # GitLab, over real HTTP
    assert back.status_code == 302
    callback = urlsplit(back.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == "http://testserver/auth/authorize"
    return api.client.get(callback.path, {k: v[0] for k, v in parse_qs(callback.query).items()}, **BROWSER)


def test_oidc_login_then_the_session_token_authorizes_ui_requests(api, gitlab, wine):
    user = gitlab.token(project=WINE, project_access=DEVELOPER)
    response = login(api, gitlab, user)
    assert response.status_code == 302, response.content
    assert response["Location"] == "http://testserver/team/wine/tracking/"  # back to the remembered project view
    assert api.client.session.get("gitlab_access_token") == user
    gitlab.state.requests.clear()
    ui = api.client.get(f"/team/wine/tracking{API}/runs/get", {"run_id": wine.run_id}, **BROWSER)
    assert ui.status_code == 200, ui.content
    assert all(headers.get("Authorization") == f"Bearer {user}" for _, _, headers in gitlab.state.requests)
    assert write(api, wine, **BROWSER).status_code == 200
    page = api.client.get("/auth/", **BROWSER)
    assert page.status_code == 200
    assert gitlab.state.tokens[user]["name"].encode() in page.content  # from /oauth/userinfo


def test_a_write_another_site_made_with_the_login_session_is_refused(api, gitlab, wine):
    user = gitlab.token(project=WINE, project_access=DEVELOPER)
    assert login(api, gitlab, user).status_code == 302
    assert write(api, wine, **BROWSER, HTTP_SEC_FETCH_SITE="cross-site").status_code == 403
    assert read(api, wine, **BROWSER, HTTP_SEC_FETCH_SITE="cross-site").status_code == 200
    assert write(api, wine, **BROWSER, HTTP_SEC_FETCH_SITE="same-origin").status_code == 200


def test_oidc_login_from_the_global_view_returns_to_the_root(api, gitlab, wine):
    user = gitlab.token(project=WINE, project_access=REPORTER)
    response = login(api, gitlab, user, start="/auth/login")
    assert response.status_code == 302
    assert response["Location"] == "http://testserver/"
    assert read(api, wine, view=None, **BROWSER).status_code == 200


def test_oidc_login_returns_to_the_page_asked_for(api, gitlab, wine, settings):
    settings.LOGIN_AUTO_REDIRECT = True
    asked = api.client.get("/team/wine/tracking/", {"x": "1"}, **BROWSER)  # the UI's page, a browser's Accept
    assert asked.status_code == 302
    user = gitlab.token(project=WINE, project_access=REPORTER)
    response = login(api, gitlab, user, start=asked["Location"])
    assert response.status_code == 302
    assert response["Location"] == "http://testserver/team/wine/tracking/?x=1"


def test_logout_clears_the_session(api, gitlab, wine):
    user = gitlab.token(project=WINE, project_access=DEVELOPER)
    login(api, gitlab, user)
    assert read(api, wine, **BROWSER).status_code == 200
    response = api.client.get("/team/wine/tracking/auth/logout", **BROWSER)
    assert response.status_code == 302
    assert "gitlab_access_token" not in api.client.session
    assert read(api, wine, **BROWSER).status_code == 401


def test_a_forged_state_is_400(api, gitlab, wine):
    user = gitlab.token(project=WINE, project_access=DEVELOPER)
    gitlab.sign_in(user)
    response = api.client.get("/auth/login", **BROWSER)
    authorize_url = response["Location"]
    back = requests.get(authorize_url, allow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]
    forged = api.client.get("/auth/authorize", {"code": code, "state": "forged"}, **BROWSER)
    assert forged.status_code == 400
    assert "gitlab_access_token" not in api.client.session
    assert read(api, wine, **BROWSER).status_code == 401


def test_a_callback_without_a_login_is_400(api, gitlab):
    response = api.client.get("/auth/authorize", {"code": "x", "state": "y"}, **BROWSER)
    assert response.status_code == 400


def test_a_refused_code_is_400(api, gitlab, wine):
    gitlab.sign_in(gitlab.token(project=WINE, project_access=DEVELOPER))
    response = api.client.get("/auth/login", **BROWSER)
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
    refused = api.client.get("/auth/authorize", {"code": "not-issued", "state": state}, **BROWSER)
    assert refused.status_code == 400
    assert "gitlab_access_token" not in api.client.session


def test_an_expired_session_token_is_cleared_and_the_caller_unauthenticated(api, gitlab, wine):
    """§7.3 (our design): on GitLab's 401 for a stored token, refresh it or clear it; the caller is then
    unauthenticated (and may log in again)."""
    user = gitlab.token(project=WINE, project_access=DEVELOPER)
    login(api, gitlab, user)
    gitlab.revoke(user)
    cache.clear()
    assert read(api, wine, **BROWSER).status_code == 401
    assert api.client.session.get("gitlab_access_token") != user
    fresh = gitlab.token(project=WINE, project_access=DEVELOPER)
    login(api, gitlab, fresh)
    assert read(api, wine, **BROWSER).status_code == 200
