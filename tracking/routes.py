"""The tracking rows of the route table: path, method, fields, handler and permission rule of each RPC."""

from mlflow_sh.routing import Rpc
from mlflow_sh.rules import PUBLIC, create, delete, read, update
from mlflow_sh.wire import Double, Int, List, Obj, Str, enum
from tracking import validation, views

VIEW_TYPE = enum(ACTIVE_ONLY=1, DELETED_ONLY=2, ALL=3)
RUN_STATUS = enum(RUNNING=1, SCHEDULED=2, FINISHED=3, FAILED=4, KILLED=5)
TAG = Obj(fields={"key": Str(required=True), "value": Str(default="")})
TAGS = List(item=TAG, default=[])
METRIC_FIELDS = {
    "key": Str(required=True),
    "value": Double(required=True),
    "timestamp": Int(required=True),
    "step": Int(default=0),
    "model_id": Str(default=""),
    "dataset_name": Str(default=""),
    "dataset_digest": Str(default=""),
}
RUN_REF = {"run_id": Str(), "run_uuid": Str()}  # either names the run
EXPERIMENT_ID = {"experiment_id": Str(required=True)}
SEARCH_PAGE = {"max_results": Int(), "page_token": Str(), "order_by": List(item=Str(), default=[])}
DATASET = Obj(required=True, fields={
    "name": Str(required=True), "digest": Str(required=True), "source_type": Str(required=True),
    "source": Str(required=True), "schema": Str(default=""), "profile": Str(default=""),
})
MODEL_REF = Obj(fields={"model_id": Str(required=True)})

RPCS = [
    # experiments
    Rpc("CreateExperiment", "POST", "mlflow/experiments/create", views.create_experiment, create(experiment=""),
        fields={"name": Str(required=True), "artifact_location": Str(default=""), "tags": TAGS}),
    Rpc("GetExperiment", "GET", "mlflow/experiments/get", views.get_experiment, read(experiment="experiment_id"),
        fields=EXPERIMENT_ID),
    Rpc("GetExperimentByName", "GET", "mlflow/experiments/get-by-name", views.get_experiment_by_name,
        read(experiment_name="experiment_name"), fields={"experiment_name": Str(required=True)}),
    *[
        Rpc("SearchExperiments", method, "mlflow/experiments/search", views.search_experiments, read(),
            fields={"filter": Str(default=""), "view_type": VIEW_TYPE, **SEARCH_PAGE})
        for method in ("POST", "GET")
    ],
    Rpc("UpdateExperiment", "POST", "mlflow/experiments/update", views.update_experiment,
        update(experiment="experiment_id"), fields={**EXPERIMENT_ID, "new_name": Str(required=True)}),
    Rpc("DeleteExperiment", "POST", "mlflow/experiments/delete", views.delete_experiment,
        delete(experiment="experiment_id"), fields=EXPERIMENT_ID),
    Rpc("RestoreExperiment", "POST", "mlflow/experiments/restore", views.restore_experiment,
        delete(experiment="experiment_id"), fields=EXPERIMENT_ID),
    Rpc("SetExperimentTag", "POST", "mlflow/experiments/set-experiment-tag", views.set_experiment_tag,
        update(experiment="experiment_id"),
        fields={**EXPERIMENT_ID, "key": Str(required=True), "value": Str(default="")}),
    Rpc("DeleteExperimentTag", "POST", "mlflow/experiments/delete-experiment-tag", views.delete_experiment_tag,
        update(experiment="experiment_id"), fields={**EXPERIMENT_ID, "key": Str(required=True)}),
    # runs
    Rpc("CreateRun", "POST", "mlflow/runs/create", views.create_run, update(experiment="experiment_id"),
        fields={"experiment_id": Str(default="0"), "user_id": Str(default=""), "run_name": Str(default=""),
                "start_time": Int(), "tags": TAGS}),
    Rpc("GetRun", "GET", "mlflow/runs/get", views.get_run, read(run="run_id"), fields=RUN_REF),
    Rpc("UpdateRun", "POST", "mlflow/runs/update", views.update_run, update(run="run_id"),
        fields={**RUN_REF, "status": RUN_STATUS, "end_time": Int(), "run_name": Str(default="")}),
    Rpc("DeleteRun", "POST", "mlflow/runs/delete", views.delete_run, delete(run="run_id"), fields=RUN_REF),
    Rpc("RestoreRun", "POST", "mlflow/runs/restore", views.restore_run, delete(run="run_id"), fields=RUN_REF),
    Rpc("SetTag", "POST", "mlflow/runs/set-tag", views.set_tag, update(run="run_id"),
        fields={**RUN_REF, "key": Str(required=True), "value": Str(default="")}),
    Rpc("DeleteTag", "POST", "mlflow/runs/delete-tag", views.delete_tag, update(run="run_id"),
        fields={**RUN_REF, "key": Str(required=True)}),
    Rpc("LogMetric", "POST", "mlflow/runs/log-metric", views.log_metric, update(run="run_id"),
        fields={**RUN_REF, **METRIC_FIELDS}),
    Rpc("LogParam", "POST", "mlflow/runs/log-parameter", views.log_param, update(run="run_id"),
        fields={**RUN_REF, "key": Str(required=True), "value": Str(default="")}),
    Rpc("LogBatch", "POST", "mlflow/runs/log-batch", views.log_batch, update(run="run_id"),
        fields={
            "run_id": Str(required=True),
            "metrics": List(item=Obj(fields=METRIC_FIELDS), default=[]),
            "params": List(item=Obj(fields={"key": Str(required=True), "value": Str(default="")}), default=[]),
            "tags": TAGS,
        },
        max_body_bytes=validation.MAX_BATCH_BYTES,
        body_too_large="Batched logging API requests must be at most {limit} bytes, got a request of size {size}."),
    Rpc("LogModel", "POST", "mlflow/runs/log-model", views.log_model, update(run="run_id"),
        fields={"run_id": Str(required=True), "model_json": Str(required=True)}),
    Rpc("LogInputs", "POST", "mlflow/runs/log-inputs", views.log_inputs, update(run="run_id"),
        fields={
            "run_id": Str(required=True),
            "datasets": List(item=Obj(fields={"tags": TAGS, "dataset": DATASET}), default=[]),
            "models": List(item=MODEL_REF, default=[]),
        }),
    Rpc("LogOutputs", "POST", "mlflow/runs/outputs", views.log_outputs, update(run="run_id"),
        fields={"run_id": Str(required=True),
                "models": List(item=Obj(fields={"model_id": Str(required=True), "step": Int(default=0)}), default=[])}),
    Rpc("SearchRuns", "POST", "mlflow/runs/search", views.search_runs, read(experiment="experiment_ids"),
        fields={"experiment_ids": List(item=Str(), default=[]), "filter": Str(default=""),
                "run_view_type": VIEW_TYPE, **SEARCH_PAGE}),
    # metric history
    Rpc("GetMetricHistory", "GET", "mlflow/metrics/get-history", views.get_metric_history, read(run="run_id"),
        fields={**RUN_REF, "metric_key": Str(required=True), "max_results": Int(bits=32), "page_token": Str()}),
    Rpc("GetMetricHistoryBulkInterval", "GET", "mlflow/metrics/get-history-bulk-interval",
        views.get_metric_history_bulk_interval, read(run="run_ids"),
        fields={"run_ids": List(item=Str(), required=True, default=[]), "metric_key": Str(required=True),
                "start_step": Int(bits=32), "end_step": Int(bits=32), "max_results": Int(bits=32)}),
    Rpc("GetMetricHistoryBulk", "GET", "mlflow/metrics/get-history-bulk", views.get_metric_history_bulk,
        read(run="run_id"), prefixes=("ajax-api/2.0",),
        fields={"run_id": List(item=Str(), default=[]), "metric_key": Str(), "max_results": Int()}),
    Rpc("SearchDatasets", "POST", "mlflow/experiments/search-datasets", views.search_datasets,
        read(experiment="experiment_ids"), prefixes=("ajax-api/2.0",),
        fields={"experiment_ids": List(item=Str(), default=[])}),
    # capabilities
    Rpc("GetServerInfo", "GET", "mlflow/server-info", views.server_info, PUBLIC, prefixes=("api/3.0", "ajax-api/3.0")),
]
