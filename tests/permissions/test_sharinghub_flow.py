"""SharingHub mode end to end with the real MLflow client: who may do what, in which view."""

import mlflow
import pytest
from mlflow.exceptions import MlflowException

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def project(sharinghub):
    sharinghub.add_project("team/wine", 42)
    sharinghub.add_project("other/beer", 7)
    return "team/wine"


def client_for(live_server, monkeypatch, token, project=None):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = f"{live_server.url}/{project}/tracking/" if project else live_server.url
    return mlflow.MlflowClient(url)


def test_developer_works_in_the_project_view(live_server, sharinghub, project, monkeypatch):
    token = sharinghub.token(project=project, level=3)
    client = client_for(live_server, monkeypatch, token, project)
    experiment_id = client.create_experiment("wine (42)")
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "rmse", 0.5)
    assert client.get_experiment(experiment_id).tags["project"] == project
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [run.info.run_id]
    assert [e.name for e in client.search_experiments()] == ["wine (42)"]


def test_creation_needs_the_project_suffix_and_a_project_view(live_server, sharinghub, project, monkeypatch):
    token = sharinghub.token(project=project, level=4)
    with pytest.raises(MlflowException, match="403"):
        client_for(live_server, monkeypatch, token, project).create_experiment("wine")
    with pytest.raises(MlflowException, match="403"):
        client_for(live_server, monkeypatch, token).create_experiment("wine (42)")


def test_reporter_reads_but_cannot_write(live_server, sharinghub, project, monkeypatch):
    developer = sharinghub.token(project=project, level=3)
    experiment_id = client_for(live_server, monkeypatch, developer, project).create_experiment("wine (42)")
    reporter = sharinghub.token(project=project, level=2)
    client = client_for(live_server, monkeypatch, reporter, project)
    assert client.get_experiment(experiment_id).name == "wine (42)"
    with pytest.raises(MlflowException, match="403"):
        client.create_run(experiment_id)


def test_other_projects_see_nothing(live_server, sharinghub, project, monkeypatch):
    developer = sharinghub.token(project=project, level=3)
    experiment_id = client_for(live_server, monkeypatch, developer, project).create_experiment("wine (42)")
    outsider = sharinghub.token(project="other/beer", level=4)
    assert client_for(live_server, monkeypatch, outsider).search_experiments() == []
    with pytest.raises(MlflowException, match="403"):
        client_for(live_server, monkeypatch, outsider).get_experiment(experiment_id)
    assert client_for(live_server, monkeypatch, outsider, "other/beer").search_experiments() == []


def test_no_token_is_401_with_how_to(live_server, sharinghub, project):
    import requests

    response = requests.get(f"{live_server.url}/api/2.0/mlflow/experiments/search?max_results=10",
                            headers={"User-Agent": "mlflow-python-client/3"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="mlflow"'
    assert "MLFLOW_TRACKING_TOKEN" in response.text


def test_sharinghub_down_is_503_and_nothing_granted(live_server, sharinghub, project, monkeypatch):
    token = sharinghub.token(project=project, level=3)
    sharinghub.fail(502)
    with pytest.raises(MlflowException) as caught:
        client_for(live_server, monkeypatch, token, project).create_experiment("wine (42)")
    assert "TEMPORARILY_UNAVAILABLE" in str(caught.value) or "503" in str(caught.value)
    sharinghub.reset_faults()
    assert client_for(live_server, monkeypatch, token, project).create_experiment("wine (42)")


def test_a_browser_is_sent_to_the_login_and_back_to_the_page_it_asked_for(live_server, sharinghub, project, settings,
                                                                           tmp_path):
    """LOGIN_AUTO_REDIRECT: the UI's page without a session → our login → SharingHub's, which sets its cookie and
    sends the browser back to that page (with its query), now served."""
    import requests

    settings.LOGIN_AUTO_REDIRECT = True
    settings.MLFLOW_UI_DIR = tmp_path  # a stand-in bundle: the page's own content is tested in tests/ui
    (tmp_path / "index.html").write_text("<html><head></head><body>the MLflow UI</body></html>")
    (tmp_path / "VERSION").write_text("3.17.2\n")
    sharinghub.sign_in(sharinghub.token(project=project, level=2))
    browser = requests.Session()
    browser.headers.update({"User-Agent": "Mozilla/5.0 Firefox/140.0", "Accept": "text/html,*/*;q=0.8"})
    # SharingHub and this server share a host (/mlflow on SharingHub's), so SharingHub's session cookie reaches
    # both; here both listen on 127.0.0.1, the double's host (cookies ignore ports).
    server = live_server.url.replace("localhost", "127.0.0.1")
    page = f"{server}/{project}/tracking/?experiment=1"

    first = browser.get(page, allow_redirects=False, timeout=10)
    assert first.status_code == 302
    assert first.headers["Location"] == ("/team/wine/tracking/auth/login"
                                         "?next=%2Fteam%2Fwine%2Ftracking%2F%3Fexperiment%3D1")
    login = browser.get(f"{server}{first.headers['Location']}", allow_redirects=False, timeout=10)
    assert login.headers["Location"] == (f"{sharinghub.url}/api/auth/login?redirect_uri="
                                         f"{requests.utils.quote(page, safe='')}")

    landed = browser.get(page, timeout=10)  # again, from the start, following every redirect as a browser does
    assert [r.status_code for r in landed.history] == [302, 302, 307]
    assert landed.url == page
    assert landed.status_code == 200 and "the MLflow UI" in landed.text


def test_the_login_returns_only_to_this_servers_pages(client, sharinghub, project):
    for foreign in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "relative/page"):
        response = client.get("/auth/login", {"next": foreign})
        assert response.status_code == 302
        assert response["Location"] == f"{sharinghub.url}/api/auth/login?redirect_uri=http%3A%2F%2Ftestserver%2F"


def test_api_calls_and_posts_are_not_sent_back_anywhere(client, sharinghub, project, settings):
    settings.LOGIN_AUTO_REDIRECT = True
    browser = {"HTTP_USER_AGENT": "Mozilla/5.0", "HTTP_ACCEPT": "application/json"}
    ajax = client.get("/team/wine/tracking/ajax-api/2.0/mlflow/experiments/search", **browser)
    assert ajax.status_code == 302 and ajax["Location"] == "/team/wine/tracking/auth/login"
    post = client.post("/ajax-api/2.0/mlflow/runs/search", "{}", content_type="application/json",
                       HTTP_ACCEPT="text/html,*/*", HTTP_USER_AGENT="Mozilla/5.0")  # a form a page would post
    assert post.status_code == 302 and post["Location"] == "/auth/login"
