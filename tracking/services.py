"""Writes for experiments, runs and what is logged to them; each request writes in one transaction (an atomic block,
or a single statement where one does it all)."""

import json
import math
import time
import uuid
from contextlib import nullcontext
from functools import cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from mlflow_sh.errors import MlflowError
from tracking import validation
from tracking.bulk import INCOMING, insert_rows, unnest_insert, unnest_rows
from tracking.models import (
    ACTIVE,
    DELETED,
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    LatestMetric,
    LoggedModel,
    LoggedModelParam,
    LoggedModelTag,
    Metric,
    ModelInput,
    ModelOutput,
    Param,
    Run,
    RunTag,
)
from tracking.names import random_run_name
from tracking.selectors import experiment_not_found, logged_model_not_found, run_not_found

RUN_NAME_TAG = "mlflow.runName"


def now_ms() -> int:
    return int(time.time() * 1000)


def append_to_uri(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


# --- experiments --------------------------------------------------------------------------------


def experiment_create(*, name: str, artifact_location: str = "", tags: list[dict] = (), project: str | None = None) -> int:
    """A new experiment; in a project view it belongs to that project (column and PROJECT_TAG tag)."""
    validation.experiment_name(name)
    tags = [t for t in tags if t["key"] != settings.PROJECT_TAG] + ([{"key": settings.PROJECT_TAG, "value": project}] if project else [])
    validation.artifact_location(artifact_location)
    for tag in tags:
        validation.key(tag["key"], "tag")
        validation.experiment_tag_value(tag["key"], tag["value"])
    created = now_ms()
    try:
        with transaction.atomic():  # a savepoint: a duplicate name must not poison the request's transaction
            experiment = Experiment.objects.create(
                name=name, artifact_location=artifact_location, creation_time=created, last_update_time=created,
                project=project,
            )
    except IntegrityError:
        raise MlflowError.exists(f"Experiment(name={name}) already exists.") from None
    if not artifact_location:
        experiment.artifact_location = append_to_uri(settings.MLFLOW_DEFAULT_ARTIFACT_ROOT, str(experiment.pk))
        Experiment.objects.filter(pk=experiment.pk).update(artifact_location=experiment.artifact_location)
    ExperimentTag.objects.bulk_create(
        [ExperimentTag(experiment=experiment, key=t["key"], value=t["value"]) for t in _last_per_key(tags)]
    )
    return experiment.pk


def _experiment_for_update(experiment_id: int, *, stage: str | None = ACTIVE) -> Experiment:
    experiment = Experiment.objects.select_for_update().filter(pk=experiment_id).first()
    if experiment is None or stage is not None and experiment.lifecycle_stage != stage:
        raise experiment_not_found(experiment_id)
    return experiment


def experiment_rename(*, experiment_id: int, new_name: str) -> None:
    validation.experiment_name(new_name)
    experiment = _experiment_for_update(experiment_id, stage=None)
    if experiment.lifecycle_stage != ACTIVE:
        # MLflow answers INVALID_STATE (a 500); a client mistake is a 400 here.
        raise MlflowError.invalid("Cannot rename a non-active experiment.")
    try:
        with transaction.atomic():
            Experiment.objects.filter(pk=experiment_id).update(name=new_name, last_update_time=now_ms())
    except IntegrityError:
        raise MlflowError.exists(f"Experiment(name={new_name}) already exists.") from None


def experiment_delete(*, experiment_id: int) -> None:
    _experiment_for_update(experiment_id, stage=ACTIVE)
    deleted_at = now_ms()
    Experiment.objects.filter(pk=experiment_id).update(lifecycle_stage=DELETED, last_update_time=deleted_at)
    Run.objects.filter(experiment_id=experiment_id).update(lifecycle_stage=DELETED, deleted_time=deleted_at)


def experiment_restore(*, experiment_id: int) -> None:
    _experiment_for_update(experiment_id, stage=DELETED)
    Experiment.objects.filter(pk=experiment_id).update(lifecycle_stage=ACTIVE, last_update_time=now_ms())
    Run.objects.filter(experiment_id=experiment_id).update(lifecycle_stage=ACTIVE, deleted_time=None)


def experiment_set_tag(*, experiment_id: int, key: str, value: str) -> None:
    validation.key(key, "tag")
    validation.experiment_tag_value(key, value)
    active_experiment_location(experiment_id)
    ExperimentTag.objects.bulk_create(
        [ExperimentTag(experiment_id=experiment_id, key=key, value=value)],
        update_conflicts=True, unique_fields=["experiment", "key"], update_fields=["value"],
    )


def experiment_delete_tag(*, experiment_id: int, key: str) -> None:
    active_experiment_location(experiment_id)
    deleted, _ = ExperimentTag.objects.filter(experiment_id=experiment_id, key=key).delete()
    if not deleted:
        raise MlflowError.not_found(f"No tag with name: {key} in experiment with id {experiment_id}")


def active_experiment_location(experiment_id: int) -> str:
    """The experiment's artifact location; it must exist (404) and be active (400), as MLflow requires."""
    experiment = Experiment.objects.filter(pk=experiment_id).values("artifact_location", "lifecycle_stage").first()
    if experiment is None:
        raise experiment_not_found(experiment_id)
    if experiment["lifecycle_stage"] != ACTIVE:
        raise MlflowError.invalid(
            f"The experiment {experiment_id} must be in the 'active' state. "
            f"Current state is {experiment['lifecycle_stage']}."
        )
    return experiment["artifact_location"]


# --- runs ---------------------------------------------------------------------------------------


# An experiment's artifact location never changes: each process remembers those it has read (PostgreSQL, whose ids
# are never reused), and the run's insert checks that the experiment is still active.
_artifact_locations: dict[int, str] = {}


def run_create(*, experiment_id: int, user_id: str, run_name: str, start_time: int | None, tags: list[dict]) -> tuple[Run, list[dict]]:
    """The new run and its tags (the caller answers with them, without reading them back)."""
    artifact_location = _artifact_locations.get(experiment_id) if connection.vendor == "postgresql" else None
    if artifact_location is None:
        artifact_location = active_experiment_location(experiment_id)
        if len(_artifact_locations) < 100_000:
            _artifact_locations[experiment_id] = artifact_location
    tags = _run_tags(tags)
    tagged_name = next((t["value"] for t in tags if t["key"] == RUN_NAME_TAG), None)
    if run_name and tagged_name is not None and run_name != tagged_name:
        raise MlflowError.invalid(
            "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
            f"(run_name='{run_name}', mlflow.runName='{tagged_name}')."
        )
    run_name = run_name or tagged_name or random_run_name()
    if tagged_name is None:
        tags.append({"key": RUN_NAME_TAG, "value": run_name})
    run_id = uuid.uuid4().hex
    run = Run(
        run_uuid=run_id,
        experiment_id=experiment_id,
        name=run_name,
        user_id=user_id,
        status="RUNNING",
        start_time=start_time if start_time is not None else now_ms(),
        artifact_uri=append_to_uri(artifact_location, run_id, "artifacts"),
        lifecycle_stage=ACTIVE,
    )
    if not _run_insert(run, tags):
        active_experiment_location(experiment_id)  # deleted since it was read: MLflow's 404 or 400
        if not _run_insert(run, tags):  # restored and deleted again meanwhile
            raise MlflowError.invalid(f"The experiment {experiment_id} must be in the 'active' state.")
    return run, tags


def _run_insert(run: Run, tags: list[dict]) -> bool:
    """The run and its tags (never none: the name tag); False when the experiment is not active. On PostgreSQL one
    statement, atomic by itself, so no BEGIN and COMMIT round trips; elsewhere a transaction after the check."""
    if connection.vendor != "postgresql":
        with transaction.atomic():
            run.save(force_insert=True)
            RunTag.objects.bulk_create([RunTag(run=run, key=t["key"], value=t["value"]) for t in tags])
        return True
    q = connection.ops.quote_name
    fields = Run._meta.concrete_fields
    experiment_active = (f"WHERE EXISTS (SELECT 1 FROM {q(Experiment._meta.db_table)} WHERE {q('experiment_id')} = %s "
                         f"AND {q('lifecycle_stage')} = %s)")
    run_sql, run_params = unnest_insert(Run, tuple(f.column for f in fields),
                                        [tuple(f.get_db_prep_save(getattr(run, f.attname), connection) for f in fields)],
                                        on_conflict="", where=experiment_active)
    tags_sql, tags_params = unnest_insert(RunTag, ("run_id", "key", "value"),
                                          [(run.run_uuid, t["key"], t["value"]) for t in tags], on_conflict="",
                                          where="WHERE EXISTS (SELECT 1 FROM run)")
    with connection.cursor() as cursor:  # the tags' foreign key is checked at the end: the run is there by then
        cursor.execute(f"WITH run AS ({run_sql} RETURNING 1), tags AS ({tags_sql}) SELECT count(*) FROM run",
                       [*run_params, run.experiment_id, ACTIVE, *tags_params])
        return cursor.fetchone()[0] == 1


def active_run_for_update(run_id: str) -> dict:
    """The run's row, locked until the transaction ends: concurrent writers to one run take turns."""
    query = Run.objects.filter(pk=run_id)
    if connection.features.has_select_for_no_key_update:
        query = query.select_for_update(no_key=True)  # does not block inserts that reference the run
    row = query.values("run_uuid", "experiment_id", "lifecycle_stage").first()
    if row is None:
        raise run_not_found(run_id)
    _require_active(run_id, row["lifecycle_stage"])
    return row


def _require_active(run_id: str, stage: str) -> None:
    if stage != ACTIVE:
        raise MlflowError.invalid(f"The run {run_id} must be in the 'active' state. Current state is {stage}.")


def run_update(*, run_id: str, status: str | None, end_time: int | None, run_name: str) -> None:
    active_run_for_update(run_id)
    changes = {}
    if status:
        changes["status"] = status
    if end_time is not None:
        changes["end_time"] = end_time
    if run_name:
        changes["name"] = run_name
        _tags_upsert(run_id, [{"key": RUN_NAME_TAG, "value": run_name}])
    if changes:
        Run.objects.filter(pk=run_id).update(**changes)


def run_delete(*, run_id: str) -> None:
    if not Run.objects.filter(pk=run_id).update(lifecycle_stage=DELETED, deleted_time=now_ms()):
        raise run_not_found(run_id)


def run_restore(*, run_id: str) -> None:
    if not Run.objects.filter(pk=run_id).update(lifecycle_stage=ACTIVE, deleted_time=None):
        raise run_not_found(run_id)


def run_set_tag(*, run_id: str, key: str, value: str) -> None:
    run_log_batch(run_id=run_id, tags=[{"key": key, "value": value}])


def run_delete_tag(*, run_id: str, key: str) -> None:
    active_run_for_update(run_id)
    deleted, _ = RunTag.objects.filter(run_id=run_id, key=key).delete()
    if not deleted:
        raise MlflowError.not_found(f"No tag with name: {key} in run with id {run_id}")


def run_log_batch(*, run_id: str, metrics: list[dict] = (), params: list[dict] = (), tags: list[dict] = ()) -> None:
    """params, then metrics, then tags, as MLflow orders them; all or nothing."""
    _check_batch_limits(metrics, params, tags)
    params = _run_params(params)
    metrics = [_metric_point(m) for m in metrics]
    tags = _run_tags(tags)
    renames = any(t["key"] == RUN_NAME_TAG for t in tags)  # the run's row changes too: the transaction below
    if connection.vendor == "postgresql" and not renames and (metrics or params or tags):
        try:
            _log_in_one_statement(run_id, params, metrics, tags)  # training loops, log_params, set_tag
            return
        except IntegrityError:  # another writer logged one of these params since the statement began: the check
            pass  # below, in a transaction that sees it, answers as MLflow does
    with transaction.atomic():
        active_run_for_update(run_id)
        if params:
            _params_insert(run_id, params)
        if metrics:
            insert_rows(Metric, METRIC_COLUMNS, _metric_rows(run_id, metrics), on_conflict=_same_point_once())
            insert_rows(LatestMetric, LATEST_METRIC_COLUMNS, _latest_rows(run_id, metrics), on_conflict=_newer_replaces())
        if tags:
            _tags_upsert(run_id, tags)


def _check_batch_limits(metrics, params, tags) -> None:
    for items, limit, kind in (
        (metrics, validation.MAX_BATCH_METRICS, "metrics"),
        (params, validation.MAX_BATCH_PARAMS, "params"),
        (tags, validation.MAX_BATCH_TAGS, "tags"),
    ):
        if len(items) > limit:
            raise MlflowError.invalid(
                f"A batch logging request can contain at most {limit} {kind}. Got {len(items)} {kind}. "
                f"Please split up {kind} across multiple requests and try again."
            )
    total = len(metrics) + len(params) + len(tags)
    if total > validation.MAX_BATCH_ENTITIES:
        raise MlflowError.invalid(
            f"A batch logging request can contain at most {validation.MAX_BATCH_ENTITIES} total metrics, params, "
            f"and tags. Got {total} total. Please split up metrics, params, and tags across multiple requests "
            "and try again."
        )


def _metric_point(metric: dict) -> dict:
    validation.key(metric["key"], "metric")
    validation.metric_timestamp(metric["key"], metric["timestamp"])
    value = metric["value"]
    is_nan = math.isnan(value)
    return {
        "key": metric["key"],
        "value": 0.0 if is_nan else value,  # SQLite has no NaN; the flag keeps it
        "is_nan": is_nan,
        "timestamp": metric["timestamp"],
        "step": metric.get("step") or 0,
        "model_id": metric.get("model_id") or "",
        "dataset_name": metric.get("dataset_name") or "",
        "dataset_digest": metric.get("dataset_digest") or "",
    }


def _run_params(params: list[dict]) -> list[dict]:
    keys = [p["key"] for p in params]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise MlflowError.invalid(
            f"Duplicate parameter keys have been submitted: {duplicates}. Please ensure the request contains only "
            "one param value per param key."
        )
    return [
        {"key": validation.key(p["key"], "param"), "value": validation.truncated(p["value"], validation.MAX_PARAM_VALUE_LENGTH)}
        for p in params
    ]


def _run_tags(tags: list[dict]) -> list[dict]:
    return [
        {"key": validation.key(t["key"], "tag"), "value": validation.truncated(t["value"], validation.MAX_RUN_TAG_VALUE_LENGTH)}
        for t in _last_per_key(tags)
    ]


def _last_per_key(items) -> list[dict]:
    return list({item["key"]: item for item in items}.values())


def _params_insert(run_id: str, params: list[dict]) -> None:
    """Params are immutable: the same value again is a no-op, another value is refused."""
    logged = dict(Param.objects.filter(run_id=run_id, key__in=[p["key"] for p in params]).values_list("key", "value"))
    _refuse_changed_param(run_id, params, logged)
    Param.objects.bulk_create([Param(run_id=run_id, **p) for p in params if p["key"] not in logged])


def _refuse_changed_param(run_id: str, params: list[dict], stored: dict[str, str]) -> None:
    """MLflow's error for the first param of the batch stored with another value."""
    for param in params:
        old = stored.get(param["key"])
        if old is not None and old != param["value"]:
            raise MlflowError.invalid(
                f"Changing param values is not allowed. Param with key='{param['key']}' was already logged with "
                f"value='{old}' for run ID='{run_id}'. Attempted logging new value '{param['value']}'."
            )


METRIC_COLUMNS = ("run_id", "key", "value", "timestamp", "step", "is_nan", "model_id", "dataset_name", "dataset_digest")
LATEST_METRIC_COLUMNS = METRIC_COLUMNS[:6]


POINT_COLUMNS = ("run_id", "key", "timestamp", "step", "value", "is_nan")  # the metrics_point constraint
MODEL_COLUMNS = ("model_id", "dataset_name", "dataset_digest")


@cache  # the text depends on nothing that changes while the process runs
def _same_point_once() -> str:
    """A point logged again is stored once; when it comes again with a logged model (the 3.x client re-logs the
    model step's metrics with model_id after log_model), the stored point takes the model, as MLflow links it."""
    q = connection.ops.quote_name
    table = q(Metric._meta.db_table)
    linked = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in MODEL_COLUMNS)
    return (f"ON CONFLICT ({', '.join(q(c) for c in POINT_COLUMNS)}) DO UPDATE SET {linked} "
            f"WHERE {table}.{q('model_id')} = '' AND excluded.{q('model_id')} <> ''")


def _metric_rows(run_id: str, metrics: list[dict]) -> list[tuple]:
    """One row per point (an upsert may touch a row once per statement); the one naming a model wins."""
    points = {}
    for m in sorted(metrics, key=lambda m: bool(m["model_id"])):
        points[tuple(m[column] for column in POINT_COLUMNS[1:])] = m
    return [(run_id, *(m[column] for column in METRIC_COLUMNS[1:])) for m in points.values()]


def _latest_rows(run_id: str, metrics: list[dict]) -> list[tuple]:
    """Each key's newest point of the batch, by key (concurrent writers then lock rows in one order)."""
    newest: dict[str, dict] = {}
    for m in metrics:
        current = newest.get(m["key"])
        if current is None or _order(m) > _order(current):
            newest[m["key"]] = m
    return [(run_id, *(m[c] for c in LATEST_METRIC_COLUMNS[1:])) for m in sorted(newest.values(), key=lambda m: m["key"])]


@cache
def _newer_replaces() -> str:
    """The latest-metric upsert: a key's stored point is replaced only by a newer one."""
    q = connection.ops.quote_name
    table = q(LatestMetric._meta.db_table)
    updated = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in LATEST_METRIC_COLUMNS[2:])
    newer = ", ".join(f"excluded.{q(c)}" for c in ("step", "timestamp", "value"))
    stored = ", ".join(f"{table}.{q(c)}" for c in ("step", "timestamp", "value"))
    return f"ON CONFLICT ({q('run_id')}, {q('key')}) DO UPDATE SET {updated} WHERE ({newer}) > ({stored})"


def _log_in_one_statement(run_id: str, params: list[dict], metrics: list[dict], tags: list[dict]) -> None:
    """PostgreSQL, a batch that does not rename the run: the run's lock and state check, the params' immutability
    check and every insert in one statement, atomic by itself, so no BEGIN and COMMIT round trips. The inserts take
    rows only when the run is active and no param changes value. A param another writer inserted after the
    statement's snapshot makes the params' insert fail (IntegrityError), and with it the whole statement."""
    q = connection.ops.quote_name
    stage = q("lifecycle_stage")
    ctes = [f"run AS (SELECT {stage} FROM {q(Run._meta.db_table)} WHERE {q('run_uuid')} = %s FOR NO KEY UPDATE)"]
    args: list = [run_id]
    changed = "SELECT NULL::text, NULL::text WHERE false"
    if params:
        changed, changed_args = _changed_params(run_id, params)
        args += changed_args
    ctes.append(f"changed AS ({changed})")
    ctes.append(f"writable AS (SELECT 1 FROM run WHERE {stage} = %s AND NOT EXISTS (SELECT 1 FROM changed))")
    args.append(ACTIVE)
    for name, (sql, sql_args) in _batch_inserts(run_id, params, metrics, tags).items():
        ctes.append(f"{name} AS ({sql})")
        args += sql_args
    sql = f"WITH {', '.join(ctes)} SELECT run.{stage}, changed.* FROM run LEFT JOIN changed ON true"
    with (transaction.atomic() if connection.in_atomic_block else nullcontext()):  # a savepoint to fail back to
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            rows = cursor.fetchall()
    if not rows:
        raise run_not_found(run_id)
    _require_active(run_id, rows[0][0])
    _refuse_changed_param(run_id, params, {key: value for _, key, value in rows if key is not None})


def _changed_params(run_id: str, params: list[dict]) -> tuple[str, list]:
    """The stored params of the batch's keys whose value differs from the batch's."""
    q = connection.ops.quote_name
    incoming, args = unnest_rows(Param, ("key", "value"), [(p["key"], p["value"]) for p in params])
    key, value = q("key"), q("value")
    return (f"SELECT stored.{key}, stored.{value} FROM {q(Param._meta.db_table)} stored JOIN {incoming} "
            f"ON stored.{key} = {INCOMING}.{key} AND stored.{value} <> {INCOMING}.{value} "
            f"WHERE stored.{q('run_id')} = %s", [*args, run_id])


def _batch_inserts(run_id: str, params: list[dict], metrics: list[dict], tags: list[dict]) -> dict[str, tuple[str, list]]:
    """The batch's INSERT statements (SQL, args) by name, each writing only when the batch is writable."""
    q = connection.ops.quote_name
    writable = "WHERE EXISTS (SELECT 1 FROM writable)"
    inserts = {}
    if params:  # a param stored with the same value is left as it is
        new_only = (f"{writable} AND NOT EXISTS (SELECT 1 FROM {q(Param._meta.db_table)} stored WHERE "
                    f"stored.{q('run_id')} = {INCOMING}.{q('run_id')} AND stored.{q('key')} = {INCOMING}.{q('key')})")
        inserts["params"] = unnest_insert(Param, ("run_id", "key", "value"),
                                          [(run_id, p["key"], p["value"]) for p in params], on_conflict="", where=new_only)
    if metrics:
        inserts["points"] = unnest_insert(Metric, METRIC_COLUMNS, _metric_rows(run_id, metrics),
                                          on_conflict=_same_point_once(), where=writable)
        inserts["latest"] = unnest_insert(LatestMetric, LATEST_METRIC_COLUMNS, _latest_rows(run_id, metrics),
                                          on_conflict=_newer_replaces(), where=writable)
    if tags:
        inserts["tags"] = unnest_insert(RunTag, ("run_id", "key", "value"),
                                        [(run_id, t["key"], t["value"]) for t in tags],
                                        on_conflict=_tag_value_replaces(), where=writable)
    return inserts


@cache
def _tag_value_replaces() -> str:
    q = connection.ops.quote_name
    return f"ON CONFLICT ({q('run_id')}, {q('key')}) DO UPDATE SET {q('value')} = excluded.{q('value')}"


def _order(metric: dict) -> tuple:
    return metric["step"], metric["timestamp"], metric["value"]


def _tags_upsert(run_id: str, tags: list[dict]) -> None:
    RunTag.objects.bulk_create(
        [RunTag(run_id=run_id, key=t["key"], value=t["value"]) for t in tags],
        update_conflicts=True, unique_fields=["run", "key"], update_fields=["value"],
    )
    run_name = next((t["value"] for t in reversed(tags) if t["key"] == RUN_NAME_TAG), None)
    if run_name is not None:
        Run.objects.filter(pk=run_id).update(name=run_name)


LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"
LOG_MODEL_REQUIRED_FIELDS = ("artifact_path", "flavors", "utc_time_created", "run_id")


def run_log_model(*, run_id: str, model_json: str) -> None:
    """2.x clients' log_model: the model's MLmodel dict joins the run's `mlflow.log-model.history` tag."""
    try:
        model = json.loads(model_json)
    except ValueError:
        raise MlflowError.invalid(f"Malformed model info. \n {model_json} \n is not a valid JSON.") from None
    if not isinstance(model, dict):
        raise MlflowError.invalid(f"Malformed model info. \n {model_json} \n is not a JSON object.")
    missing = sorted(set(LOG_MODEL_REQUIRED_FIELDS) - set(model))
    if missing:
        raise MlflowError.invalid(f"Model json is missing mandatory fields: {missing}")
    active_run_for_update(run_id)
    logged = RunTag.objects.filter(run_id=run_id, key=LOG_MODEL_HISTORY_TAG).values_list("value", flat=True).first()
    history = json.loads(logged) if logged else []
    history.append(model)
    value = json.dumps(history)
    while len(value) > validation.MAX_RUN_TAG_VALUE_LENGTH and len(history) > 1:
        history.pop(0)  # the tag must stay valid JSON: drop the oldest entries rather than cut the text
        value = json.dumps(history)
    if len(value) > validation.MAX_RUN_TAG_VALUE_LENGTH:
        raise MlflowError.invalid(
            f"Model json is {len(value)} characters long; the run tag holding it is limited to "
            f"{validation.MAX_RUN_TAG_VALUE_LENGTH}."
        )
    _tags_upsert(run_id, [{"key": LOG_MODEL_HISTORY_TAG, "value": value}])


def run_log_inputs(*, run_id: str, datasets: list[dict], models: list[dict]) -> None:
    for entry in datasets:
        validation.dataset(entry["dataset"])
        for tag in entry.get("tags") or []:
            validation.input_tag(tag)
    run = active_run_for_update(run_id)
    if datasets:
        _dataset_inputs_insert(run_id, run["experiment_id"], datasets)
    if models:
        ModelInput.objects.bulk_create(
            [ModelInput(run_id=run_id, model_id=m["model_id"]) for m in models], ignore_conflicts=True
        )


def _dataset_inputs_insert(run_id: str, experiment_id: int, datasets: list[dict]) -> None:
    """Datasets are shared per experiment by (name, digest); a run links to each once, with its tags."""
    fields = ("name", "digest", "source_type", "source", "schema", "profile")
    Dataset.objects.bulk_create(
        [Dataset(experiment_id=experiment_id, **{f: d["dataset"].get(f) or "" for f in fields}) for d in datasets],
        ignore_conflicts=True,
    )
    identities = {(d["dataset"]["name"], d["dataset"]["digest"]) for d in datasets}
    dataset_ids = {
        (name, digest): pk
        for pk, name, digest in Dataset.objects.filter(
            experiment_id=experiment_id, name__in={n for n, _ in identities}, digest__in={g for _, g in identities}
        ).values_list("id", "name", "digest")
        if (name, digest) in identities
    }
    DatasetInput.objects.bulk_create(
        [DatasetInput(run_id=run_id, dataset_id=pk) for pk in dataset_ids.values()], ignore_conflicts=True
    )
    input_ids = dict(
        DatasetInput.objects.filter(run_id=run_id, dataset_id__in=dataset_ids.values()).values_list("dataset_id", "id")
    )
    InputTag.objects.bulk_create(
        [
            InputTag(dataset_input_id=input_ids[dataset_ids[(d["dataset"]["name"], d["dataset"]["digest"])]], key=t["key"], value=t["value"])
            for d in datasets
            for t in d.get("tags") or []
        ],
        ignore_conflicts=True,
    )


def run_log_outputs(*, run_id: str, models: list[dict]) -> None:
    active_run_for_update(run_id)
    ModelOutput.objects.bulk_create(
        [ModelOutput(run_id=run_id, model_id=m["model_id"], step=m.get("step") or 0) for m in models],
        ignore_conflicts=True,
    )


# --- logged models (MLflow 3) -----------------------------------------------------------------------

LOGGED_MODEL_NAME_FORBIDDEN = set('/:.%"\'')


def logged_model_create(*, experiment_id: int, name: str, model_type: str, source_run_id: str,
                        params: list[dict], tags: list[dict]) -> str:
    if name and LOGGED_MODEL_NAME_FORBIDDEN & set(name):
        raise MlflowError.invalid(
            f"Invalid model name '{name}'. Names cannot contain the following characters: / : . % \" '"
        )
    artifact_location = active_experiment_location(experiment_id)
    model_id = f"m-{uuid.uuid4().hex}"
    created = now_ms()
    model = LoggedModel.objects.create(
        model_id=model_id, experiment_id=experiment_id, name=name or random_run_name(),
        artifact_location=append_to_uri(artifact_location, "models", model_id, "artifacts"),
        creation_timestamp_ms=created, last_updated_timestamp_ms=created, status="LOGGED_MODEL_PENDING",
        model_type=model_type, source_run_id=source_run_id,
    )
    _logged_model_tags_upsert(model.pk, tags)
    _logged_model_params_upsert(model.pk, params)
    return model_id


def _logged_model_for_update(model_id: str) -> None:
    stage = LoggedModel.objects.select_for_update().filter(pk=model_id).values_list("lifecycle_stage", flat=True).first()
    if stage != ACTIVE:
        raise logged_model_not_found(model_id)


def logged_model_finalize(*, model_id: str, status: str) -> None:
    _logged_model_for_update(model_id)
    LoggedModel.objects.filter(pk=model_id).update(status=status, last_updated_timestamp_ms=now_ms())


def logged_model_delete(*, model_id: str) -> None:
    _logged_model_for_update(model_id)
    LoggedModel.objects.filter(pk=model_id).update(lifecycle_stage=DELETED, last_updated_timestamp_ms=now_ms())


def logged_model_set_tags(*, model_id: str, tags: list[dict]) -> None:
    _logged_model_for_update(model_id)
    _logged_model_tags_upsert(model_id, tags)
    LoggedModel.objects.filter(pk=model_id).update(last_updated_timestamp_ms=now_ms())


def logged_model_delete_tag(*, model_id: str, key: str) -> None:
    _logged_model_for_update(model_id)
    deleted, _ = LoggedModelTag.objects.filter(model_id=model_id, key=key).delete()
    if not deleted:
        raise MlflowError.not_found(f"No tag with key '{key}' found for model with ID '{model_id}'.")


def logged_model_log_params(*, model_id: str, params: list[dict]) -> None:
    _logged_model_for_update(model_id)
    _logged_model_params_upsert(model_id, params)


def _logged_model_tags_upsert(model_id: str, tags: list[dict]) -> None:
    tags = [{"key": validation.key(t["key"], "tag"), "value": t["value"]} for t in _last_per_key(tags)]
    LoggedModelTag.objects.bulk_create(
        [LoggedModelTag(model_id=model_id, **t) for t in tags],
        update_conflicts=True, unique_fields=["model", "key"], update_fields=["value"],
    )


def _logged_model_params_upsert(model_id: str, params: list[dict]) -> None:
    params = [
        {"key": validation.key(p["key"], "param"), "value": validation.truncated(p["value"], validation.MAX_PARAM_VALUE_LENGTH)}
        for p in _last_per_key(params)
    ]
    LoggedModelParam.objects.bulk_create(
        [LoggedModelParam(model_id=model_id, **p) for p in params],
        update_conflicts=True, unique_fields=["model", "key"], update_fields=["value"],
    )
