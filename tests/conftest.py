"""Shared fixtures: an in-process API client that checks responses against MLflow's protobuf messages,
and the real MLflow client pointed at a live server on loopback."""

import json

import pytest
from django.test import Client
from django.urls import set_script_prefix
from google.protobuf import json_format


def proto_response_class(rpc_name: str):
    """MLflow's own <Rpc>.Response message, from the installed mlflow package."""
    from mlflow.protos import mlflow_artifacts_pb2, model_registry_pb2, service_pb2

    for module in (service_pb2, model_registry_pb2, mlflow_artifacts_pb2):
        if hasattr(module, rpc_name):
            return getattr(module, rpc_name).Response
    raise LookupError(f"no MLflow protobuf message for {rpc_name}")


def assert_matches_proto(rpc_name: str, body: dict) -> None:
    """A wrong field name or type fails here, as it would in the real client."""
    json_format.ParseDict(body, proto_response_class(rpc_name)(), ignore_unknown_fields=False)


class Api:
    """Raw HTTP against the app, in this thread (so django_assert_num_queries sees every query)."""

    def __init__(self):
        self.client = Client()

    def request(self, method: str, path: str, body=None, *, content_type="application/json", **extra):
        if method == "GET":
            return self.client.get(path, body or {}, **extra)
        data = body if isinstance(body, (str, bytes)) else json.dumps(body if body is not None else {})
        return self.client.generic(method, path, data, content_type=content_type, **extra)

    def call(self, rpc_name: str, method: str, path: str, body=None, *, status: int = 200) -> dict:
        """One RPC: asserts the status, and checks a 200 body against MLflow's response message."""
        response = self.request(method, path, body)
        assert response.status_code == status, response.content
        parsed = response.json()
        if status == 200:
            assert_matches_proto(rpc_name, parsed)
        else:
            assert set(parsed) >= {"error_code", "message"}, parsed
        return parsed


@pytest.fixture(autouse=True)
def fresh_script_prefix():
    """Django's WSGI handler resets the script prefix on each request, its test client does not: a request sent
    with X-Script-Name would leave /mlflow/ to the next test."""
    set_script_prefix("/")
    yield
    set_script_prefix("/")


@pytest.fixture
def api(db):
    return Api()


@pytest.fixture
def experiment_id(api):
    return api.call("CreateExperiment", "POST", "/api/2.0/mlflow/experiments/create", {"name": "fixture-exp"})["experiment_id"]


@pytest.fixture
def run_id(api, experiment_id):
    body = {"experiment_id": experiment_id, "user_id": "tester", "run_name": "fixture-run", "start_time": 1000}
    return api.call("CreateRun", "POST", "/api/2.0/mlflow/runs/create", body)["run"]["info"]["run_id"]


@pytest.fixture
def default_experiment(transactional_db):
    """Experiment 0 again after a transactional test's flush (it comes from a data migration)."""
    from tracking.models import Experiment

    Experiment.objects.get_or_create(
        experiment_id=0,
        defaults={"name": "Default", "artifact_location": "mlflow-artifacts:/0", "creation_time": 0, "last_update_time": 0},
    )


@pytest.fixture
def mlflow_client(live_server, default_experiment, monkeypatch):
    """The real MLflow 3.x client, talking HTTP to a live server on loopback."""
    import mlflow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    mlflow.set_tracking_uri(live_server.url)
    yield mlflow.MlflowClient(live_server.url)
    if mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


# --- artifact stores ------------------------------------------------------------------------------

ARTIFACT_BUCKET = "mlflow-test-artifacts"


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 endpoint over HTTP: moto's server on a loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_store(s3_endpoint, settings, monkeypatch):
    """Artifacts in a fresh bucket of the moto server, through the real django-storages code."""
    import boto3

    from mlflow_sh.env import artifact_storage

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=ARTIFACT_BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": artifact_storage(f"s3://{ARTIFACT_BUCKET}/prefix", variable="MLFLOW_ARTIFACTS_DESTINATION",
                                      endpoint_url=s3_endpoint, region="us-east-1", addressing_style="path",
                                      verify_tls=True),
    }
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=ARTIFACT_BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=ARTIFACT_BUCKET, Key=item["Key"])
    for upload in client.list_multipart_uploads(Bucket=ARTIFACT_BUCKET).get("Uploads", []):
        client.abort_multipart_upload(Bucket=ARTIFACT_BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    client.delete_bucket(Bucket=ARTIFACT_BUCKET)


@pytest.fixture
def local_store(tmp_path, settings):
    """Artifacts in a fresh folder."""
    from mlflow_sh.env import artifact_storage

    root = tmp_path / "mlartifacts"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": artifact_storage(str(root), variable="MLFLOW_ARTIFACTS_DESTINATION", endpoint_url="",
                                      region="", addressing_style="auto", verify_tls=True),
    }
    return root


@pytest.fixture(params=["local", "s3"])
def any_store(request):
    """Each artifact test once on the local folder and once on S3."""
    return request.getfixturevalue(f"{request.param}_store")


# --- permissions ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sharinghub_server():
    from tests.doubles.sharinghub import SharingHubDouble

    double = SharingHubDouble().start()
    yield double
    double.stop()


@pytest.fixture
def sharinghub(sharinghub_server, settings):
    """SharingHub mode against the double, with a clean slate: no projects, tokens, faults or cached answers."""
    from django.core.cache import cache

    from permissions.upstream import forget_local_cache
    from tests.doubles.sharinghub import SharingHubState

    sharinghub_server.state = SharingHubState()
    settings.PERMISSION_MODE = "sharinghub"
    settings.SHARINGHUB_URL = sharinghub_server.url
    settings.SHARINGHUB_AUTH_DEFAULT_TOKEN = False
    cache.clear()
    forget_local_cache()
    yield sharinghub_server
    cache.clear()
    forget_local_cache()
