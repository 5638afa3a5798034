"""One handler per tracking RPC: a decoded request dict in, an MLflow response dict out."""


from django.conf import settings

from mlflow_sh.errors import MlflowError
from mlflow_sh.wire import missing_value, non_empty, run_id_of, with_page_token
from tracking import payloads, selectors, services, validation
from tracking.artifacts import artifact_store

MAX_HISTORY_BULK_RUNS = 100
MAX_HISTORY_BULK_RESULTS = 25000
MAX_BULK_INTERVAL_RESULTS = 2500
MAX_DATASET_SEARCH_EXPERIMENTS = 20


# --- experiments --------------------------------------------------------------------------------


def create_experiment(request, data):
    experiment_id = services.experiment_create(
        name=data["name"], artifact_location=data["artifact_location"] or "", tags=data["tags"] or [],
        project=request.project_path,
    )
    return {"experiment_id": str(experiment_id)}


def get_experiment(request, data):
    return {"experiment": selectors.experiment_get(validation.experiment_id(data["experiment_id"]))}


def get_experiment_by_name(request, data):
    return {"experiment": selectors.experiment_get_by_name(data["experiment_name"])}


def search_experiments(request, data):
    max_results = selectors.check_max_results(data["max_results"], limit=selectors.MAX_SEARCH_RESULTS, default=1000)
    experiments, token = selectors.experiments_search(
        view_type=data["view_type"] or "ACTIVE_ONLY", filter_string=data["filter"], order_by=data["order_by"],
        max_results=max_results, token=data["page_token"], projects=request.readable_projects,
    )
    return with_page_token(non_empty(experiments=experiments), token)


def update_experiment(request, data):
    services.experiment_rename(experiment_id=validation.experiment_id(data["experiment_id"]), new_name=data["new_name"])
    return {}


def delete_experiment(request, data):
    services.experiment_delete(experiment_id=validation.experiment_id(data["experiment_id"]))
    return {}


def restore_experiment(request, data):
    services.experiment_restore(experiment_id=validation.experiment_id(data["experiment_id"]))
    return {}


def set_experiment_tag(request, data):
    services.experiment_set_tag(
        experiment_id=validation.experiment_id(data["experiment_id"]), key=data["key"], value=data["value"]
    )
    return {}


def delete_experiment_tag(request, data):
    services.experiment_delete_tag(experiment_id=validation.experiment_id(data["experiment_id"]), key=data["key"])
    return {}


# --- runs ---------------------------------------------------------------------------------------


def create_run(request, data):
    run, tags = services.run_create(
        experiment_id=validation.experiment_id(data["experiment_id"] or "0"),
        user_id=data["user_id"] or "",
        run_name=data["run_name"] or "",
        start_time=data["start_time"],
        tags=data["tags"] or [],
    )
    return {"run": payloads.new_run(run, tags)}


def get_run(request, data):
    return {"run": selectors.run_get(run_id_of(data))}


def update_run(request, data):
    run_id = run_id_of(data)
    services.run_update(run_id=run_id, status=data["status"], end_time=data["end_time"], run_name=data["run_name"] or "")
    return {"run_info": selectors.run_info_get(run_id)}


def delete_run(request, data):
    services.run_delete(run_id=run_id_of(data))
    return {}


def restore_run(request, data):
    services.run_restore(run_id=run_id_of(data))
    return {}


def set_tag(request, data):
    services.run_set_tag(run_id=run_id_of(data), key=data["key"], value=data["value"])
    return {}


def delete_tag(request, data):
    services.run_delete_tag(run_id=run_id_of(data), key=data["key"])
    return {}


def log_metric(request, data):
    metric = {name: data[name] for name in ("key", "value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest")}
    services.run_log_batch(run_id=run_id_of(data), metrics=[metric])
    return {}


def log_param(request, data):
    services.run_log_batch(run_id=run_id_of(data), params=[{"key": data["key"], "value": data["value"]}])
    return {}


def log_batch(request, data):
    services.run_log_batch(
        run_id=validation.run_id(data["run_id"]), metrics=data["metrics"], params=data["params"], tags=data["tags"]
    )
    return {}


def log_model(request, data):
    services.run_log_model(run_id=data["run_id"], model_json=data["model_json"])
    return {}


def log_inputs(request, data):
    services.run_log_inputs(run_id=data["run_id"], datasets=data["datasets"], models=data["models"])
    return {}


def log_outputs(request, data):
    services.run_log_outputs(run_id=data["run_id"], models=data["models"])
    return {}


def search_runs(request, data):
    if not data["experiment_ids"]:
        return {}
    max_results = selectors.check_max_results(data["max_results"], limit=selectors.MAX_SEARCH_RESULTS, default=1000)
    runs, token = selectors.runs_search(
        experiment_ids=[validation.experiment_id(e) for e in data["experiment_ids"]],
        filter_string=data["filter"],
        run_view_type=data["run_view_type"] or "ACTIVE_ONLY",
        max_results=max_results,
        order_by=data["order_by"],
        token=data["page_token"],
        projects=request.readable_projects,
    )
    return with_page_token(non_empty(runs=runs), token)


# --- metric history -----------------------------------------------------------------------------


def get_metric_history(request, data):
    max_results = data["max_results"]
    if max_results is not None and max_results <= 0:
        raise MlflowError.invalid(f"max_results must be greater than 0, got {max_results}.")
    metrics, token = selectors.metric_history(
        run_id=run_id_of(data), key=data["metric_key"], max_results=max_results, token=data["page_token"]
    )
    return with_page_token(non_empty(metrics=metrics), token)


def get_metric_history_bulk(request, data):
    run_ids = data["run_id"]
    if not run_ids:
        raise MlflowError.invalid("GetMetricHistoryBulk request must specify at least one run_id.")
    if len(run_ids) > MAX_HISTORY_BULK_RUNS:
        raise MlflowError.invalid(
            f"GetMetricHistoryBulk request cannot specify more than {MAX_HISTORY_BULK_RUNS} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    if not data["metric_key"]:
        raise MlflowError.invalid("GetMetricHistoryBulk request must specify a metric_key.")
    max_results = min(data["max_results"] or MAX_HISTORY_BULK_RESULTS, MAX_HISTORY_BULK_RESULTS)
    return {"metrics": selectors.metric_history_bulk(run_ids=run_ids, key=data["metric_key"], max_results=max_results)}


def get_metric_history_bulk_interval(request, data):
    run_ids = data["run_ids"]
    if len(run_ids) > MAX_HISTORY_BULK_RUNS:
        raise MlflowError.invalid(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_HISTORY_BULK_RUNS} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    max_results = data["max_results"] if data["max_results"] is not None else MAX_BULK_INTERVAL_RESULTS
    if not 1 <= max_results <= MAX_BULK_INTERVAL_RESULTS:
        raise MlflowError.invalid(f"max_results must be between 1 and {MAX_BULK_INTERVAL_RESULTS}.")
    start_step, end_step = data["start_step"], data["end_step"]
    if (start_step is None) != (end_step is None):
        raise MlflowError.invalid("If either start step or end step are specified, both must be specified.")
    if start_step is not None and start_step > end_step:
        raise MlflowError.invalid(
            f"end_step must be greater than start_step. Found start_step={start_step} and end_step={end_step}."
        )
    metrics = selectors.metric_history_bulk_interval(
        run_ids=run_ids, key=data["metric_key"], start_step=start_step, end_step=end_step, max_results=max_results
    )
    return non_empty(metrics=metrics)


def search_datasets(request, data):
    experiment_ids = data["experiment_ids"]
    if not experiment_ids:
        raise MlflowError.invalid("SearchDatasets request must specify at least one experiment_id.")
    if len(experiment_ids) > MAX_DATASET_SEARCH_EXPERIMENTS:
        raise MlflowError.invalid(
            f"SearchDatasets request cannot specify more than {MAX_DATASET_SEARCH_EXPERIMENTS} experiment_ids. "
            f"Received {len(experiment_ids)} experiment_ids."
        )
    summaries = selectors.dataset_summaries([validation.experiment_id(e) for e in experiment_ids])
    return non_empty(dataset_summaries=summaries)


# --- server ----------------------------------------------------------------------------------------


def server_info(request, data):
    """Capabilities, as 3.x clients read them before moving artifacts: only what this server really does."""
    from mlflow_sh.urls import served_rpc_names  # the route table says what is served

    served = served_rpc_names()
    direct_to_s3 = artifact_store().supports_multipart
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": direct_to_s3 and settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD,
        "multipart_downloads_enabled": direct_to_s3 and settings.MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD,
        "artifact_serving_enabled": "UploadArtifact" in served,
        "presigned_upload_run_id_supported": "CreatePresignedUploadUrl" in served,
        "presigned_upload_model_id_supported": "CreatePresignedUploadUrl" in served,
        "model_artifact_presigned_downloads_supported": False,
        "features_enabled": {"gateway": False, "scheduled_issue_detection": False},
        "tracking_auth": "",
        "artifacts_presigned_only": False,
    }


# --- the web UI's own calls -------------------------------------------------------------------------

def get_ui_telemetry(request, data):
    """The UI's telemetry worker asks this first; disabled, it never sends a record (this server reports none)."""
    return {"disable_ui_telemetry": True, "disable_ui_events": [], "ui_rollout_percentage": 0}


def post_ui_telemetry(request, data):
    return {"status": "disabled"}  # the records are dropped; "disabled" tells a worker that sent some to stop


def gateway_proxy(request, data):
    """No AI gateway behind this server: MLflow's answer when MLFLOW_DEPLOYMENTS_TARGET is unset."""
    return {"endpoints": []}


# --- logged models (MLflow 3) -----------------------------------------------------------------------

MAX_LOGGED_MODEL_RESULTS = 50000


def create_logged_model(request, data):
    model_id = services.logged_model_create(
        experiment_id=validation.experiment_id(data["experiment_id"]), name=data["name"], model_type=data["model_type"],
        source_run_id=data["source_run_id"], params=data["params"], tags=data["tags"],
    )
    return {"model": selectors.logged_model_get(model_id)}


def get_logged_model(request, data):
    return {"model": selectors.logged_model_get(data["model_id"], allow_deleted=bool(data["allow_deleted"]))}


def finalize_logged_model(request, data):
    if data["status"] in (None, "LOGGED_MODEL_STATUS_UNSPECIFIED"):
        raise missing_value("status")
    services.logged_model_finalize(model_id=data["model_id"], status=data["status"])
    return {"model": selectors.logged_model_get(data["model_id"])}


def delete_logged_model(request, data):
    services.logged_model_delete(model_id=data["model_id"])
    return {}


def set_logged_model_tags(request, data):
    services.logged_model_set_tags(model_id=data["model_id"], tags=data["tags"])
    return {}


def delete_logged_model_tag(request, data):
    services.logged_model_delete_tag(model_id=data["model_id"], key=data["tag_key"])
    return {}


def log_logged_model_params(request, data):
    services.logged_model_log_params(model_id=data["model_id"], params=data["params"])
    return {}


def search_logged_models(request, data):
    if not data["experiment_ids"]:
        raise missing_value("experiment_ids")
    max_results = selectors.check_max_results(data["max_results"], limit=MAX_LOGGED_MODEL_RESULTS, default=50)
    models, token = selectors.logged_models_search(
        experiment_ids=[validation.experiment_id(e) for e in data["experiment_ids"]], filter_string=data["filter"],
        datasets=data["datasets"], order_by=data["order_by"], max_results=max_results, token=data["page_token"],
        projects=request.readable_projects,
    )
    return with_page_token(non_empty(models=models), token)
