"""Publication of model versions into a transactional STAC API (spec stac-publication.md §2, §3, §6), against
the STAC double: the outbox is written with the registry change, the publisher delivers it in order, retried
through outages, 5xx, timeouts and conflicts, and nothing is lost when a worker dies mid-delivery."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from stac_publish import publisher
from stac_publish.models import PublicationJob
from tests.stac_publish.conftest import (
    MODEL,
    PROJECT,
    PUBLISH_TOKEN,
    TASKS_TAG,
    assert_catalogue,
    assert_no_problem_jobs,
    drain,
    item_id_of,
    read_back,
)

ROOT = Path(__file__).resolve().parents[2]
RENAMED = "wine-classifier (42)"


def jobs():
    return list(PublicationJob.objects.order_by("id").values_list("action", "item_id"))


def sent(double):
    """The write requests the double received: (method, item id, status or None when dropped)."""
    return [(r.method, r.item_id, r.status) for r in double.log if r.method in {"POST", "PUT", "DELETE"}]


# --- (a) the outbox is written with the change, and only then ------------------------------------------------


def test_registration_records_a_job_and_sends_nothing_during_the_request(stac, registry):
    registry.create_model()
    assert jobs() == []  # a registered model without versions publishes nothing
    v1 = registry.create_version()
    assert jobs() == [("create", "mlflow-42-wine-model-v1")]
    assert stac.log == []  # the MLflow request did not touch the STAC API
    drain()
    assert_no_problem_jobs()
    assert [(m, i, s) for m, i, s in sent(stac)] == [("POST", "mlflow-42-wine-model-v1", 201)]
    assert all(r.authorization == f"Bearer {PUBLISH_TOKEN}" for r in stac.log)
    assert_catalogue(stac, {"mlflow-42-wine-model-v1": v1})


def test_a_failed_registry_request_leaves_no_job(stac, registry):
    registry.register()
    registry.create_model("other (42)")
    before = jobs()
    # The rename records the deletes of the old items before its update fails: the rollback takes them back.
    body = registry.call("RenameRegisteredModel", "POST", "mlflow/registered-models/rename",
                         {"name": MODEL, "new_name": "other (42)"}, status=400)
    assert body["error_code"] == "RESOURCE_ALREADY_EXISTS"
    registry.call("CreateModelVersion", "POST", "mlflow/model-versions/create",
                  {"name": MODEL, "source": "file:///etc"}, status=400)
    registry.call("SetRegisteredModelAlias", "POST", "mlflow/registered-models/alias",
                  {"name": MODEL, "alias": "latest", "version": "1"}, status=400)
    registry.call("UpdateModelVersion", "PATCH", "mlflow/model-versions/update",
                  {"name": MODEL, "version": "7", "description": "no such version"}, status=404)
    assert jobs() == before
    assert stac.log == []


def test_nothing_is_recorded_when_publication_is_off(registry, settings):
    settings.STAC_PUBLISH_URL = ""
    (v1,) = registry.register()
    registry.call("UpdateModelVersion", "PATCH", "mlflow/model-versions/update",
                  {"name": MODEL, "version": "1", "description": "x"})
    registry.call("DeleteModelVersion", "DELETE", "mlflow/model-versions/delete", {"name": MODEL, "version": "1"})
    assert jobs() == []
    with pytest.raises(CommandError, match="STAC_PUBLISH_URL"):
        call_command("stac_publish", "--once", stdout=io.StringIO())


def test_only_project_models_that_are_not_prompts_are_published(stac, registry, api):
    registry.register()
    # The global view records no project; a project model without "(<id>)" has no item id; prompts never publish.
    api.call("CreateRegisteredModel", "POST", "/api/2.0/mlflow/registered-models/create",
             {"name": "loose (42)", "tags": [TASKS_TAG]})
    _, run_id, source = registry.run_with_model()
    api.call("CreateModelVersion", "POST", "/api/2.0/mlflow/model-versions/create",
             {"name": "loose (42)", "source": source, "run_id": run_id})
    registry.register("no-suffix")
    registry.create_model("prompt (42)", tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}, TASKS_TAG])
    registry.call("CreateModelVersion", "POST", "mlflow/model-versions/create",
                  {"name": "prompt (42)", "source": "dummy-source"})
    assert jobs() == [("create", "mlflow-42-wine-model-v1")]


# --- (b) every registry change reaches the catalogue in its latest state ----------------------------------------


def step(double, expected):
    drain()
    assert_no_problem_jobs()
    return assert_catalogue(double, expected)


def test_registry_changes_reach_the_catalogue(stac, registry):
    v1, v2 = registry.register(versions=2)
    id1, id2 = item_id_of(MODEL, 1), item_id_of(MODEL, 2)
    found = step(stac, {id1: v1, id2: v2})
    assert found[id1]["properties"]["mlm:tasks"] == ["classification"]
    assert found[id1]["properties"]["sharinghub:path"] == PROJECT and found[id1]["properties"]["sharinghub:id"] == 42

    registry.call("UpdateRegisteredModel", "PATCH", "mlflow/registered-models/update",
                  {"name": MODEL, "description": "Wine quality classifier."})
    found = step(stac, {id1: v1, id2: v2})
    assert found[id1]["properties"]["description"] == found[id2]["properties"]["description"] == "Wine quality classifier."

    registry.call("UpdateModelVersion", "PATCH", "mlflow/model-versions/update",
                  {"name": MODEL, "version": "2", "description": "Retrained."})
    found = step(stac, {id1: v1, id2: v2})
    assert found[id2]["properties"]["description"] == "Retrained."

    registry.call("SetModelVersionTag", "POST", "mlflow/model-versions/set-tag",
                  {"name": MODEL, "version": "1", "key": "mlm:architecture", "value": "LogisticRegression"})
    found = step(stac, {id1: v1, id2: v2})
    assert found[id1]["properties"]["mlm:architecture"] == "LogisticRegression"
    registry.call("DeleteModelVersionTag", "DELETE", "mlflow/model-versions/delete-tag",
                  {"name": MODEL, "version": "1", "key": "mlm:architecture"})
    found = step(stac, {id1: v1, id2: v2})
    assert found[id1]["properties"]["mlm:architecture"] == "unknown"

    registry.call("SetRegisteredModelTag", "POST", "mlflow/registered-models/set-tag",
                  {"name": MODEL, "key": "mlm:architecture", "value": "Linear"})
    found = step(stac, {id1: v1, id2: v2})
    assert found[id1]["properties"]["mlm:architecture"] == found[id2]["properties"]["mlm:architecture"] == "Linear"
    registry.call("DeleteRegisteredModelTag", "DELETE", "mlflow/registered-models/delete-tag",
                  {"name": MODEL, "key": "mlm:architecture"})
    step(stac, {id1: v1, id2: v2})

    registry.call("TransitionModelVersionStage", "POST", "mlflow/model-versions/transition-stage",
                  {"name": MODEL, "version": "1", "stage": "Production", "archive_existing_versions": False})
    found = step(stac, {id1: v1, id2: v2})
    assert found[id1]["properties"]["mlflow:stage"] == "Production"

    registry.call("SetRegisteredModelAlias", "POST", "mlflow/registered-models/alias",
                  {"name": MODEL, "alias": "champion", "version": "1"})
    found = step(stac, {id1: v1, id2: v2})
    assert found[id1]["properties"]["mlflow:aliases"] == ["champion"]
    stac.log.clear()
    registry.call("SetRegisteredModelAlias", "POST", "mlflow/registered-models/alias",
                  {"name": MODEL, "alias": "champion", "version": "2"})
    found = step(stac, {id1: v1, id2: v2})
    assert "mlflow:aliases" not in found[id1]["properties"]
    assert found[id2]["properties"]["mlflow:aliases"] == ["champion"]
    assert sorted(sent(stac)) == [("PUT", id1, 200), ("PUT", id2, 200)]  # both versions, once each
    registry.call("DeleteRegisteredModelAlias", "DELETE", "mlflow/registered-models/alias",
                  {"name": MODEL, "alias": "champion"})
    found = step(stac, {id1: v1, id2: v2})
    assert "mlflow:aliases" not in found[id2]["properties"]

    stac.log.clear()
    registry.call("RenameRegisteredModel", "POST", "mlflow/registered-models/rename",
                  {"name": MODEL, "new_name": RENAMED})
    new1, new2 = item_id_of(RENAMED, 1), item_id_of(RENAMED, 2)
    v1.name = v2.name = RENAMED
    step(stac, {new1: v1, new2: v2})
    assert sorted(sent(stac)) == sorted([("DELETE", id1, 204), ("DELETE", id2, 204), ("POST", new1, 201),
                                         ("POST", new2, 201)])

    registry.call("DeleteModelVersion", "DELETE", "mlflow/model-versions/delete", {"name": RENAMED, "version": "1"})
    step(stac, {new2: v2})

    stac.log.clear()
    registry.call("DeleteRegisteredModel", "DELETE", "mlflow/registered-models/delete", {"name": RENAMED})
    step(stac, {})
    assert sent(stac) == [("DELETE", new2, 204)]


# --- (c) faults: everything lands exactly once, in its latest state, in order per item -----------------------


def lifecycle_under_faults(stac, registry):
    """Registration and changes while the API misbehaves; returns the expected catalogue."""
    v1, v2 = registry.register(versions=2)
    registry.call("UpdateModelVersion", "PATCH", "mlflow/model-versions/update",
                  {"name": MODEL, "version": "1", "description": "first"})
    registry.call("SetRegisteredModelAlias", "POST", "mlflow/registered-models/alias",
                  {"name": MODEL, "alias": "champion", "version": "2"})
    registry.call("UpdateModelVersion", "PATCH", "mlflow/model-versions/update",
                  {"name": MODEL, "version": "1", "description": "latest"})
    v3 = registry.create_version()
    registry.call("DeleteModelVersion", "DELETE", "mlflow/model-versions/delete", {"name": MODEL, "version": "3"})
    assert v3.version == 3
    return {item_id_of(MODEL, 1): v1, item_id_of(MODEL, 2): v2}


def assert_latest(stac, expected):
    stac.wait_idle()  # a request whose client gave up may still be applied: let it, then look
    found = assert_catalogue(stac, expected)
    assert found[item_id_of(MODEL, 1)]["properties"]["description"] == "latest"
    assert found[item_id_of(MODEL, 2)]["properties"]["mlflow:aliases"] == ["champion"]
    assert read_back(stac, item_id_of(MODEL, 3)) is None


def test_an_outage_loses_nothing(stac, registry):
    stac.down()  # connection refused while the changes are made
    expected = lifecycle_under_faults(stac, registry)
    stac.down(seconds=0.4)  # ... and for a while after the worker starts
    drain()
    assert_no_problem_jobs()
    assert max(PublicationJob.objects.values_list("attempts", flat=True)) > 1
    assert_latest(stac, expected)


def test_dropped_connections_and_retryable_statuses_are_retried(stac, registry):
    stac.drop(2)
    for status in (500, 502, 503, 408, 429, 500):
        stac.fail(status, 1)
    expected = lifecycle_under_faults(stac, registry)
    drain()
    assert_no_problem_jobs()
    assert sorted({r.status for r in stac.log if r.status and r.status >= 400} - {404, 409}) == [408, 429, 500, 502, 503]
    assert_latest(stac, expected)


def test_a_slow_api_times_out_and_the_item_still_lands_once(stac, registry, settings):
    settings.STAC_PUBLISH_TIMEOUT = 0.3
    stac.slow(0.8, 2, methods="POST")  # both creations time out; the double applies them afterwards
    v1, v2 = registry.register(versions=2)
    drain()
    assert_no_problem_jobs()
    stac.wait_idle()
    assert PublicationJob.objects.filter(attempts__gt=1).exists()
    assert_catalogue(stac, {item_id_of(MODEL, 1): v1, item_id_of(MODEL, 2): v2})


def test_a_put_applied_after_its_timeout_does_not_leave_a_stale_item(stac, registry, settings):
    """A server finishes a request whose client gave up: the late PUT must not have the last word."""
    (v1,) = registry.register()
    drain()
    settings.STAC_PUBLISH_TIMEOUT = 0.3
    stac.slow(0.9, 1, methods="PUT")  # this PUT is applied 0.9 s after it was sent
    registry.call("UpdateModelVersion", "PATCH", "mlflow/model-versions/update",
                  {"name": MODEL, "version": "1", "description": "old"})
    drain()  # PUT(old) times out, is sent again and lands
    registry.call("UpdateModelVersion", "PATCH", "mlflow/model-versions/update",
                  {"name": MODEL, "version": "1", "description": "latest"})
    drain()  # PUT(latest) lands ... and then the first PUT(old) is applied
    stac.wait_idle()
    drain()
    found = assert_catalogue(stac, {item_id_of(MODEL, 1): v1})
    assert found[item_id_of(MODEL, 1)]["properties"]["description"] == "latest"


def test_409_on_create_falls_back_to_put(stac, registry):
    stale = {"type": "Feature", "stac_version": "1.0.0", "id": item_id_of(MODEL, 1), "geometry": None,
             "properties": {"datetime": "2020-01-01T00:00:00Z", "title": "stale"}, "links": [], "assets": {}}
    stac.seed(stale)  # left by an earlier attempt whose answer was lost
    stac.conflict_on_post()
    (v1,) = registry.register()
    drain()
    assert_no_problem_jobs()
    assert sent(stac) == [("POST", item_id_of(MODEL, 1), 409), ("PUT", item_id_of(MODEL, 1), 200)]
    assert_catalogue(stac, {item_id_of(MODEL, 1): v1})


def test_put_of_a_missing_item_posts_it_and_delete_of_a_missing_item_is_done(stac, registry):
    (v1,) = registry.register()
    drain()
    stac.collections["ai-model"].clear()  # the catalogue lost it
    registry.call("UpdateModelVersion", "PATCH", "mlflow/model-versions/update",
                  {"name": MODEL, "version": "1", "description": "again"})
    drain()
    assert sent(stac)[-2:] == [("PUT", item_id_of(MODEL, 1), 404), ("POST", item_id_of(MODEL, 1), 201)]
    assert_catalogue(stac, {item_id_of(MODEL, 1): v1})
    stac.collections["ai-model"].clear()
    registry.call("DeleteModelVersion", "DELETE", "mlflow/model-versions/delete", {"name": MODEL, "version": "1"})
    drain()
    assert_no_problem_jobs()
    assert sent(stac)[-1] == ("DELETE", item_id_of(MODEL, 1), 404)


def test_order_per_item_survives_faults_and_a_delete_is_never_undone(stac, registry):
    (v1,) = registry.register()
    drain()
    old, new = item_id_of(MODEL, 1), item_id_of(RENAMED, 1)
    stac.log.clear()
    stac.fail(500, 3)
    stac.drop(1)
    # old: delete, then create again; new: create, put, delete. Out of order, one of them would be wrong.
    registry.call("RenameRegisteredModel", "POST", "mlflow/registered-models/rename", {"name": MODEL, "new_name": RENAMED})
    registry.call("UpdateModelVersion", "PATCH", "mlflow/model-versions/update",
                  {"name": RENAMED, "version": "1", "description": "while renamed"})
    registry.call("RenameRegisteredModel", "POST", "mlflow/registered-models/rename", {"name": RENAMED, "new_name": MODEL})
    assert jobs()[-5:] == [("delete", old), ("create", new), ("put", new), ("delete", new), ("create", old)]
    drain()
    assert_no_problem_jobs()
    found = assert_catalogue(stac, {old: v1})
    assert found[old]["properties"]["description"] == "while renamed"
    writes = {item: [method for method, item_id, status in sent(stac) if item_id == item and status and status < 300]
              for item in (old, new)}
    assert writes[old] == ["DELETE", "POST"], sent(stac)
    assert writes[new] in ([], ["DELETE"], ["POST", "DELETE"], ["POST", "PUT", "DELETE"]), sent(stac)
    # A change followed by the version's deletion, both queued while the API fails: the change never resurrects it.
    stac.fail(503, 2)
    registry.call("SetModelVersionTag", "POST", "mlflow/model-versions/set-tag",
                  {"name": MODEL, "version": "1", "key": "note", "value": "x"})
    registry.call("DeleteModelVersion", "DELETE", "mlflow/model-versions/delete", {"name": MODEL, "version": "1"})
    drain()
    assert_no_problem_jobs()
    assert read_back(stac, old) is None and read_back(stac) == []


# --- (d) a worker that dies mid-delivery --------------------------------------------------------------------


def test_a_job_claimed_by_a_dead_worker_is_delivered_once_its_lease_expires(stac, registry):
    (v1,) = registry.register()
    claimed = publisher.claim_next_job()  # ... and the worker dies before deliver()
    assert claimed is not None and claimed.leased_until > timezone.now()
    assert publisher.run_once() == 0  # leased: no other worker takes it meanwhile
    assert stac.log == []
    PublicationJob.objects.filter(pk=claimed.pk).update(leased_until=timezone.now() - timedelta(seconds=1))
    assert publisher.run_once() == 1
    assert_no_problem_jobs()
    assert_catalogue(stac, {item_id_of(MODEL, 1): v1})


def _database_uri() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_killing_the_worker_process_mid_delivery_loses_nothing(stac, registry, settings, default_experiment):
    """The real `manage.py stac_publish` in a subprocess, killed (SIGKILL) while its POST is in flight."""
    (v1,) = registry.register()
    stac.slow(1.0, 1, methods="POST")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.stac_publish.worker_settings",
           "TEST_BACKEND_STORE_URI": _database_uri(),
           "MLFLOW_SH_TEST_ARTIFACTS": settings.STORAGES["artifacts"]["OPTIONS"]["location"],
           "STAC_PUBLISH_URL": stac.url, "STAC_PUBLIC_BASE_URL": settings.STAC_PUBLIC_BASE_URL,
           "STAC_PUBLISH_AUTH": "bearer", "STAC_PUBLISH_TOKEN": PUBLISH_TOKEN, "STAC_PUBLISH_TIMEOUT": "10"}
    worker = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "stac_publish", "--poll", "0.1"], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not stac.requests(method="POST"):
            assert worker.poll() is None, worker.communicate()[1].decode()[-3000:]
            if time.monotonic() > deadline:
                worker.kill()
                raise AssertionError(f"the worker sent nothing: {worker.communicate()[1].decode()[-3000:]}")
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)  # mid-delivery: the POST is being handled
        worker.wait(10)
        worker.communicate()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    job = PublicationJob.objects.get()
    assert job.state == PublicationJob.PENDING and job.leased_until > timezone.now()  # its outcome was never recorded
    stac.wait_idle()  # the double finishes the orphaned POST: the item exists, unknown to the outbox
    PublicationJob.objects.filter(pk=job.pk).update(leased_until=timezone.now() - timedelta(seconds=1))
    call_command("stac_publish", "--once", stdout=io.StringIO())
    assert_no_problem_jobs()
    assert sent(stac)[-2:] == [("POST", item_id_of(MODEL, 1), 409), ("PUT", item_id_of(MODEL, 1), 200)]
    assert_catalogue(stac, {item_id_of(MODEL, 1): v1})


# --- (e) the command: --backfill, --lag ----------------------------------------------------------------------


def test_backfill_queues_every_current_publishable_version(stac, registry, settings):
    settings.STAC_PUBLISH_URL = ""  # versions made while publication was off
    v1, v2, _ = registry.register(versions=3)
    registry.call("DeleteModelVersion", "DELETE", "mlflow/model-versions/delete", {"name": MODEL, "version": "3"})
    (b1,) = registry.register("beer-model (42)")
    registry.register("no-suffix")
    assert jobs() == []
    settings.STAC_PUBLISH_URL = stac.url
    out = io.StringIO()
    call_command("stac_publish", "--backfill", "--once", stdout=out)
    assert "queued 3 versions" in out.getvalue()
    assert_no_problem_jobs()
    assert_catalogue(stac, {item_id_of(MODEL, 1): v1, item_id_of(MODEL, 2): v2, item_id_of("beer-model (42)", 1): b1})
    call_command("stac_publish", "--backfill", "--once", stdout=io.StringIO())  # idempotent: PUT again
    assert_catalogue(stac, {item_id_of(MODEL, 1): v1, item_id_of(MODEL, 2): v2, item_id_of("beer-model (42)", 1): b1})


def test_lag_reports_the_outbox(stac, registry):
    registry.register(versions=2)
    out = io.StringIO()
    call_command("stac_publish", "--lag", stdout=out)
    assert out.getvalue().startswith("pending: 2 jobs, oldest ")
    stac.fail(400, 1)
    drain()
    out = io.StringIO()
    call_command("stac_publish", "--lag", stdout=out)
    done, failed = out.getvalue().splitlines()
    assert done.startswith("done: 1 jobs") and failed.startswith("failed: 1 jobs")


# --- (f) operators: the admin's retry and drop actions --------------------------------------------------------


def test_admin_lists_jobs_and_retries_or_drops_them(stac, registry, admin_client):
    v1, v2 = registry.register(versions=2)
    stac.fail(403, 2)
    drain()
    failed = list(PublicationJob.objects.filter(state=PublicationJob.FAILED).order_by("id"))
    assert len(failed) == 2
    page = admin_client.get("/admin/stac_publish/publicationjob/")
    assert page.status_code == 200 and item_id_of(MODEL, 1).encode() in page.content
    changelist = "/admin/stac_publish/publicationjob/"
    response = admin_client.post(changelist, {"action": "retry_now", "_selected_action": [failed[0].pk]})
    assert response.status_code == 302
    response = admin_client.post(changelist, {"action": "drop", "_selected_action": [failed[1].pk]})
    assert response.status_code == 302
    assert PublicationJob.objects.get(pk=failed[0].pk).state == PublicationJob.PENDING
    dropped = PublicationJob.objects.get(pk=failed[1].pk)
    assert dropped.state == PublicationJob.DONE and dropped.last_error == "dropped by an operator"
    drain()
    assert_no_problem_jobs()
    assert_catalogue(stac, {item_id_of(MODEL, 1): v1})  # the dropped one was not sent


# --- (g) refusals are not retried -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 403, 422])
def test_other_4xx_fail_the_job_with_status_and_body(stac, registry, status):
    registry.register()
    stac.fail(status, 1, body={"code": "Refused", "description": "mlm:input is not valid here"})
    drain()
    job = PublicationJob.objects.get()
    assert job.state == PublicationJob.FAILED and job.attempts == 1
    assert f"HTTP {status}" in job.last_error and "mlm:input is not valid here" in job.last_error
    assert len(stac.log) == 1  # not retried
    assert publisher.run_once() == 0


def test_the_http_status_of_the_last_attempt_is_recorded(stac, registry, settings):
    """Spec §2.3: the publication status (last attempt, HTTP status, error) is stored for operators."""
    settings.STAC_PUBLISH_MAX_BACKOFF = 60
    registry.register()
    stac.fail(503, 1)
    publisher.run_once()
    job = PublicationJob.objects.get()
    assert job.state == PublicationJob.PENDING and "HTTP 503" in job.last_error
    assert job.last_status == 503
    stac.fail(400, 1)
    PublicationJob.objects.update(next_attempt_at=timezone.now())
    publisher.run_once()
    job = PublicationJob.objects.get()
    assert job.state == PublicationJob.FAILED and "HTTP 400" in job.last_error
    assert job.last_status == 400


def test_wrong_credentials_or_collection_are_configuration_errors(stac, registry, settings):
    registry.register()
    settings.STAC_PUBLISH_TOKEN = "wrong"
    drain()
    job = PublicationJob.objects.get()
    assert job.state == PublicationJob.FAILED and "HTTP 403" in job.last_error
    settings.STAC_PUBLISH_TOKEN = PUBLISH_TOKEN
    settings.STAC_PUBLISH_COLLECTION = "no-such-collection"
    PublicationJob.objects.update(state=PublicationJob.PENDING)
    drain()
    job = PublicationJob.objects.get()
    assert job.state == PublicationJob.FAILED and "HTTP 404" in job.last_error
    assert read_back(stac) == []


# --- the real MLflow 3.x client (models:/m-<id> sources) ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_real_client_registration_changes_and_deletion(stac, live_server, default_experiment, monkeypatch):
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    tracking_uri = f"{live_server.url}/{PROJECT}/tracking/"
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    try:
        frame = pd.DataFrame({"alcohol": [12.8, 13.2, 11.1, 14.0], "pH": [3.1, 3.4, 3.2, 3.0]})
        client.create_registered_model(MODEL, tags={"mlm:tasks": json.dumps(["classification"])})
        mlflow.set_experiment("wine (42)")
        with mlflow.start_run():
            mlflow.log_param("max_iter", 200)
            info = mlflow.sklearn.log_model(LogisticRegression(max_iter=200).fit(frame, [0, 1, 0, 1]), name="model",
                                            input_example=frame.head(2), pip_requirements=["scikit-learn"])
        version = mlflow.register_model(info.model_uri, MODEL)
        assert version.source.startswith("models:/m-")
        item = item_id_of(MODEL, int(version.version))
        assert stac.log == []
        drain()
        assert_no_problem_jobs()
        assert read_back(stac) == [item]
        assert read_back(stac, item)["properties"]["mlm:framework"] == "scikit-learn"

        client.update_model_version(MODEL, version.version, description="From the 3.x client.")
        client.set_registered_model_alias(MODEL, "champion", version.version)
        client.create_registered_model("other (42)")
        before = PublicationJob.objects.count()
        with pytest.raises(MlflowException, match="RESOURCE_ALREADY_EXISTS"):
            client.rename_registered_model(MODEL, "other (42)")
        assert PublicationJob.objects.count() == before  # the failed rename recorded nothing
        drain()
        published = read_back(stac, item)
        assert published["properties"]["description"] == "From the 3.x client."
        assert published["properties"]["mlflow:aliases"] == ["champion"]

        client.delete_model_version(MODEL, version.version)
        drain()
        assert_no_problem_jobs()
        assert read_back(stac) == []
        assert [method for method, _, status in sent(stac) if status < 300] == ["POST", "PUT", "PUT", "DELETE"]
    finally:
        if mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
