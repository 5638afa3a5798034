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
