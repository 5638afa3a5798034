"""Failures always leave as MLflow JSON with MLflow's status, and roll the request back."""

import json

import pytest
from django.test import override_settings

from mlflow_sh.errors import HTTP_STATUS, MlflowError
from tracking.models import Experiment


def test_status_table_matches_mlflow():
    assert MlflowError.exists("x").status == 400  # not 409: set_experiment() relies on it
    assert MlflowError("x", "TEMPORARILY_UNAVAILABLE").status == 503
    assert MlflowError("x", "SOMETHING_NEW").status == 500
    assert HTTP_STATUS["RESOURCE_DOES_NOT_EXIST"] == 404


def test_a_body_over_the_upload_limit_is_a_400(api):
    big = json.dumps({"name": "x" * (11 * 1024 * 1024)})
    response = api.request("POST", "/api/2.0/mlflow/experiments/create", big)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "exceeds the limit" in response.json()["message"]


@override_settings(MLFLOW_ERROR_EXTRA_KEYS=False)
def test_extra_error_keys_can_be_turned_off(api):
    response = api.request("GET", "/api/2.0/mlflow/experiments/get", {"experiment_id": "424242"})
    assert response.json() == {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "No Experiment with id=424242 exists"}


def test_a_failed_request_writes_nothing(api, monkeypatch):
    from tracking import services

    def exploding_bulk_create(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services.ExperimentTag.objects, "bulk_create", exploding_bulk_create)
    response = api.request("POST", "/api/2.0/mlflow/experiments/create", {"name": "half-written", "tags": [{"key": "k", "value": "v"}]})
    assert response.status_code == 500
    assert response.json()["error_code"] == "INTERNAL_ERROR"
    assert "disk on fire" not in response.json()["message"]  # internals stay in the log
    assert not Experiment.objects.filter(name="half-written").exists()


@pytest.mark.parametrize("path", ["/api/2.0/mlflow/nope", "/ajax-api/3.0/mlflow/gateway/secrets", "/api/2.0/mlflow/runs/get/extra"])
def test_unknown_api_paths_answer_json_404(api, path):
    response = api.request("GET", path)
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
