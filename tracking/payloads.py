"""Rows as MLflow JSON: built from .values() rows with a fixed number of queries, whatever the page size."""

from collections import defaultdict

from django.conf import settings
from django.db.models import OuterRef

from mlflow_sh.wire import double
from tracking.lookups import Values, json_children, json_rows
from tracking.models import (
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

EXPERIMENT_COLUMNS = ("experiment_id", "name", "artifact_location", "lifecycle_stage", "last_update_time", "creation_time")
RUN_INFO_COLUMNS = (
    "run_uuid", "experiment_id", "name", "user_id", "status", "start_time", "end_time", "artifact_uri", "lifecycle_stage",
)


def experiment_rows(experiments):
    """The values() query of an Experiment queryset, each row with its tags: still a query, so a search can page it."""
    tags = json_rows(ExperimentTag.objects.filter(experiment=OuterRef("pk")), "experiment", "id", "key", "value")
    return experiments.annotate(tag_rows=tags).values(*EXPERIMENT_COLUMNS, "tag_rows")


def experiments(experiment_ids: list[int]) -> list[dict]:
    """Experiments in the given order: 1 query."""
    rows = {row["experiment_id"]: row for row in experiment_rows(Experiment.objects.filter(pk__any=Values(experiment_ids)))}
    return [experiment(rows[eid]) for eid in experiment_ids if eid in rows]


def experiment(row: dict) -> dict:
    body = {
        "experiment_id": str(row["experiment_id"]),
        "name": row["name"],
        "artifact_location": row["artifact_location"],
        "lifecycle_stage": row["lifecycle_stage"],
        "last_update_time": row["last_update_time"],
        "creation_time": row["creation_time"],
    }
    if tags := json_children(row["tag_rows"]):
        body["tags"] = [{"key": key, "value": value} for _id, key, value in tags]
    body["workspace"] = settings.MLFLOW_WORKSPACE
    return body


def run_info(row: dict) -> dict:
    info = {
        "run_uuid": row["run_uuid"],
        "experiment_id": str(row["experiment_id"]),
        "run_name": row["name"],
        "user_id": row["user_id"],
        "status": row["status"],
    }
    if row["start_time"] is not None:
        info["start_time"] = row["start_time"]
    if row["end_time"] is not None:
        info["end_time"] = row["end_time"]
    info["artifact_uri"] = row["artifact_uri"]
    info["lifecycle_stage"] = row["lifecycle_stage"]
    info["run_id"] = row["run_uuid"]
    return info


def new_run(run: Run, tags: list[dict]) -> dict:
    """A just-created run, as the reference answers runs/create: no outputs yet, empty inputs."""
    row = {column: getattr(run, column) for column in RUN_INFO_COLUMNS}
    return {"info": run_info(row), "data": {"tags": tags}, "inputs": {}}


def run_infos(run_ids: list[str]) -> dict[str, dict]:
    rows = Run.objects.filter(pk__any=Values(run_ids)).values(*RUN_INFO_COLUMNS)
    return {row["run_uuid"]: run_info(row) for row in rows}


def runs(run_ids: list[str]) -> list[dict]:
    """Whole runs (info, data, inputs, outputs) in the given order: 8 queries for 1 run or 50 000."""
    ids = Values(run_ids)
    infos = run_infos(run_ids)
    metrics, params, tags = defaultdict(list), defaultdict(list), defaultdict(list)
    for run_id, key, value, timestamp, step, is_nan in (
        LatestMetric.objects.filter(run_id__any=ids).order_by("id")
        .values_list("run_id", "key", "value", "timestamp", "step", "is_nan")
    ):
        metrics[run_id].append({"key": key, "value": "NaN" if is_nan else value, "timestamp": timestamp, "step": step})
    for run_id, key, value in Param.objects.filter(run_id__any=ids).order_by("id").values_list("run_id", "key", "value"):
        params[run_id].append({"key": key, "value": value})
    for run_id, key, value in RunTag.objects.filter(run_id__any=ids).order_by("id").values_list("run_id", "key", "value"):
        tags[run_id].append({"key": key, "value": value})
    inputs = run_inputs(ids)
    outputs = run_outputs(ids)

    result = []
    for run_id in run_ids:
        if run_id not in infos:
            continue
        data = {}
        if run_id in metrics:
            data["metrics"] = metrics[run_id]
        if run_id in params:
            data["params"] = params[run_id]
        if run_id in tags:
            data["tags"] = tags[run_id]
        result.append({"info": infos[run_id], "data": data, "inputs": inputs.get(run_id, {}),
                       "outputs": outputs.get(run_id, {})})
    return result


def run_inputs(run_ids: list[str]) -> dict[str, dict]:
    """run.inputs: dataset inputs with their tags, and model inputs (3 queries)."""
    dataset_inputs = list(
        DatasetInput.objects.filter(run_id__any=run_ids).order_by("id").values_list(
            "id", "run_id", "dataset__name", "dataset__digest", "dataset__source_type", "dataset__source",
            "dataset__schema", "dataset__profile",
        )
    )
    input_tags = defaultdict(list)
    if dataset_inputs:
        for input_id, key, value in (
            InputTag.objects.filter(dataset_input_id__any=Values([row[0] for row in dataset_inputs]))
            .order_by("id").values_list("dataset_input_id", "key", "value")
        ):
            input_tags[input_id].append({"key": key, "value": value})
    inputs = defaultdict(dict)
    for input_id, run_id, name, digest, source_type, source, schema, profile in dataset_inputs:
        dataset = {"name": name, "digest": digest, "source_type": source_type, "source": source}
        if schema:
            dataset["schema"] = schema
        if profile:
            dataset["profile"] = profile
        entry = {"tags": input_tags[input_id], "dataset": dataset} if input_tags[input_id] else {"dataset": dataset}
        inputs[run_id].setdefault("dataset_inputs", []).append(entry)
    for run_id, model_id in ModelInput.objects.filter(run_id__any=run_ids).order_by("id").values_list("run_id", "model_id"):
        inputs[run_id].setdefault("model_inputs", []).append({"model_id": model_id})
    return inputs


def run_outputs(run_ids: list[str]) -> dict[str, dict]:
    outputs = defaultdict(dict)
    for run_id, model_id, step in ModelOutput.objects.filter(run_id__any=run_ids).order_by("id").values_list("run_id", "model_id", "step"):
        outputs[run_id].setdefault("model_outputs", []).append({"model_id": model_id, "step": step})
    return outputs


def metric_point(key: str, value: float, timestamp: int, step: int, is_nan: bool) -> dict:
    return {"key": key, "value": double(value, is_nan), "timestamp": timestamp, "step": step}


LOGGED_MODEL_COLUMNS = (
    "model_id", "experiment_id", "name", "creation_timestamp_ms", "last_updated_timestamp_ms", "artifact_location",
    "status", "status_message", "model_type", "source_run_id",
)


def logged_models(model_ids: list[str]) -> list[dict]:
    """Logged models in the given order: 4 queries."""
    ids = Values(model_ids)
    rows = {row["model_id"]: row for row in LoggedModel.objects.filter(pk__any=ids).values(*LOGGED_MODEL_COLUMNS)}
    tags, params, metrics = defaultdict(list), defaultdict(list), defaultdict(list)
    for model_id, key, value in LoggedModelTag.objects.filter(model_id__any=ids).order_by("key").values_list("model_id", "key", "value"):
        tags[model_id].append({"key": key, "value": value})
    for model_id, key, value in LoggedModelParam.objects.filter(model_id__any=ids).order_by("id").values_list("model_id", "key", "value"):
        params[model_id].append({"key": key, "value": value})
    for model_id, run_id, key, value, timestamp, step, is_nan, dataset_name, dataset_digest in (
        Metric.objects.filter(model_id__any=ids).order_by("key", "step", "timestamp")
        .values_list("model_id", "run_id", "key", "value", "timestamp", "step", "is_nan", "dataset_name", "dataset_digest")
    ):
        point = {**metric_point(key, value, timestamp, step, is_nan), "model_id": model_id, "run_id": run_id}
        if dataset_name:
            point.update(dataset_name=dataset_name, dataset_digest=dataset_digest)
        metrics[model_id].append(point)
    result = []
    for model_id in model_ids:
        if model_id not in rows:
            continue
        data = {}
        if params[model_id]:
            data["params"] = params[model_id]
        if metrics[model_id]:
            data["metrics"] = metrics[model_id]
        result.append({"info": logged_model_info(rows[model_id], tags[model_id]), "data": data})
    return result


def logged_model_info(row: dict, tags: list[dict]) -> dict:
    info = {
        "model_id": row["model_id"],
        "experiment_id": str(row["experiment_id"]),
        "name": row["name"],
        "creation_timestamp_ms": row["creation_timestamp_ms"],
        "last_updated_timestamp_ms": row["last_updated_timestamp_ms"],
        "artifact_uri": row["artifact_location"],
        "status": row["status"],
    }
    if row["status_message"]:
        info["status_message"] = row["status_message"]
    info["model_type"] = row["model_type"]
    if row["source_run_id"]:
        info["source_run_id"] = row["source_run_id"]
    if tags:
        info["tags"] = tags
    return info
