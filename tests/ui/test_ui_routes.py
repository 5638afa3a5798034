"""The routes only the web UI calls, as MLflow 3.17's server answers them: telemetry off, no AI gateway."""

import pytest

pytestmark = pytest.mark.django_db

TELEMETRY = "/ajax-api/3.0/mlflow/ui-telemetry"
GATEWAY = "/ajax-api/2.0/mlflow/gateway-proxy"


@pytest.mark.parametrize("view", ["", "/team/wine/tracking"])
def test_telemetry_is_off_so_the_worker_never_sends(api, view):
    response = api.request("GET", f"{view}{TELEMETRY}")
    assert response.status_code == 200
    assert response.json() == {"disable_ui_telemetry": True, "disable_ui_events": [], "ui_rollout_percentage": 0}


def test_sent_records_are_dropped_and_the_worker_told_to_stop(api):
    records = {"records": [{"event_name": "ui_click", "timestamp_ns": 1, "params": {}, "installation_id": "i",
                            "session_id": "s"}]}
    response = api.request("POST", TELEMETRY, records)
    assert response.status_code == 200
    assert response.json() == {"status": "disabled"}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_gateway_proxy_lists_no_endpoint(api, method):
    response = api.request(method, GATEWAY, {"gateway_path": "api/2.0/endpoints/"})
    assert response.status_code == 200
    assert response.json() == {"endpoints": []}


def test_they_need_no_credential_and_ask_nothing_of_sharinghub(api, sharinghub):
    browser = {"HTTP_USER_AGENT": "Mozilla/5.0", "HTTP_ACCEPT": "application/json"}
    for method, path in (("GET", TELEMETRY), ("POST", TELEMETRY), ("GET", GATEWAY), ("POST", GATEWAY)):
        assert api.request(method, f"/team/wine/tracking{path}", {}, **browser).status_code == 200, (method, path)
    assert sharinghub.state.calls == []


def test_other_ui_paths_stay_json_404s(api):
    """Traces, workspaces and the GenAI pages have no store here: the UI shows their panels empty."""
    for path in ("/ajax-api/3.0/mlflow/traces/search", "/ajax-api/3.0/mlflow/get-trace-artifact",
                 "/ajax-api/3.0/mlflow/workspaces"):
        response = api.request("GET", path)
        assert response.status_code == 404
        assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
