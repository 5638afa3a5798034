"""The tracking rows of the route table: path, method, fields, handler and permission rule of each RPC."""

from mlflow_sh.routing import Rpc
from mlflow_sh.rules import PUBLIC, create, delete, guard, read, update
from mlflow_sh.wire import Bool, Double, Int, List, Obj, Str, enum
from tracking import artifact_views, validation, views

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
PARAMS = List(item=Obj(fields={"key": Str(required=True), "value": Str(default="")}), default=[])
LOGGED_MODEL_STATUS = enum(LOGGED_MODEL_STATUS_UNSPECIFIED=0, LOGGED_MODEL_PENDING=1, LOGGED_MODEL_READY=2,
                           LOGGED_MODEL_UPLOAD_FAILED=3)
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
    Rpc("CreateExperiment", "POST", "mlflow/experiments/create", views.create_experiment,
        # the location stays mlflow-artifacts:/<id>: a chosen one could point into another project's files
        create(project="name") & guard("default_location:artifact_location"),
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
        update(experiment="experiment_id") & guard("suffix:new_name"), fields={**EXPERIMENT_ID, "new_name": Str(required=True)}),
    Rpc("DeleteExperiment", "POST", "mlflow/experiments/delete", views.delete_experiment,
        delete(experiment="experiment_id"), fields=EXPERIMENT_ID),
    Rpc("RestoreExperiment", "POST", "mlflow/experiments/restore", views.restore_experiment,
        delete(experiment="experiment_id"), fields=EXPERIMENT_ID),
    Rpc("SetExperimentTag", "POST", "mlflow/experiments/set-experiment-tag", views.set_experiment_tag,
        update(experiment="experiment_id") & guard("project_tag:key"),
        fields={**EXPERIMENT_ID, "key": Str(required=True), "value": Str(default="")}),
    Rpc("DeleteExperimentTag", "POST", "mlflow/experiments/delete-experiment-tag", views.delete_experiment_tag,
        update(experiment="experiment_id") & guard("project_tag:key"), fields={**EXPERIMENT_ID, "key": Str(required=True)}),
    # runs
    Rpc("CreateRun", "POST", "mlflow/runs/create", views.create_run, update(experiment="experiment_id"),
        fields={"experiment_id": Str(default="0"), "user_id": Str(default=""), "run_name": Str(default=""),
                "start_time": Int(), "tags": TAGS}, atomic=False),  # one insert statement (services.run_create)
    Rpc("GetRun", "GET", "mlflow/runs/get", views.get_run, read(run="run_id"), fields=RUN_REF),
    Rpc("UpdateRun", "POST", "mlflow/runs/update", views.update_run, update(run="run_id"),
        fields={**RUN_REF, "status": RUN_STATUS, "end_time": Int(), "run_name": Str(default="")}),
    Rpc("DeleteRun", "POST", "mlflow/runs/delete", views.delete_run, delete(run="run_id"), fields=RUN_REF),
    Rpc("RestoreRun", "POST", "mlflow/runs/restore", views.restore_run, delete(run="run_id"), fields=RUN_REF),
    # run_log_batch opens its own transaction, or needs none (a batch of metrics alone is one statement)
    Rpc("SetTag", "POST", "mlflow/runs/set-tag", views.set_tag, update(run="run_id"),
        fields={**RUN_REF, "key": Str(required=True), "value": Str(default="")}, atomic=False),
    Rpc("DeleteTag", "POST", "mlflow/runs/delete-tag", views.delete_tag, update(run="run_id"),
        fields={**RUN_REF, "key": Str(required=True)}),
    Rpc("LogMetric", "POST", "mlflow/runs/log-metric", views.log_metric, update(run="run_id"),
        fields={**RUN_REF, **METRIC_FIELDS}, atomic=False),
    Rpc("LogParam", "POST", "mlflow/runs/log-parameter", views.log_param, update(run="run_id"),
        fields={**RUN_REF, "key": Str(required=True), "value": Str(default="")}, atomic=False),
    Rpc("LogBatch", "POST", "mlflow/runs/log-batch", views.log_batch, update(run="run_id"),
        fields={
            "run_id": Str(required=True),
            "metrics": List(item=Obj(fields=METRIC_FIELDS), default=[]),
            "params": PARAMS,
            "tags": TAGS,
        },
        max_body_bytes=validation.MAX_BATCH_BYTES, atomic=False,
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
    Rpc("SearchRuns", "POST", "mlflow/runs/search", views.search_runs, read(),  # filtered to readable projects
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
    # artifacts: the proxy (paths as the client builds them from mlflow-artifacts: URIs), and by run
    Rpc("UploadArtifact", "PUT", "mlflow-artifacts/artifacts/<path:artifact_path>", artifact_views.upload_artifact,
        update(artifact_path="artifact_path"), raw_body=True, atomic=False),
    Rpc("DownloadArtifact", "GET", "mlflow-artifacts/artifacts/<path:artifact_path>", artifact_views.download_artifact,
        read(artifact_path="artifact_path"), atomic=False),
    Rpc("DeleteArtifact", "DELETE", "mlflow-artifacts/artifacts/<path:artifact_path>", artifact_views.delete_artifact,
        delete(artifact_path="artifact_path"), atomic=False),
    Rpc("ListArtifacts", "GET", "mlflow-artifacts/artifacts", artifact_views.list_artifacts,
        read(artifact_path="path"), fields={"path": Str(default="")}, atomic=False),
    *[
        Rpc(name, "POST", f"mlflow-artifacts/mpu/{action}/<path:artifact_path>", handler,
            update(artifact_path="artifact_path"), fields=fields, atomic=False)
        for name, action, handler, fields in (
            ("CreateMultipartUpload", "create", artifact_views.create_multipart_upload,
             {"path": Str(required=True), "num_parts": Int(required=True)}),
            ("CompleteMultipartUpload", "complete", artifact_views.complete_multipart_upload,
             {"path": Str(required=True), "upload_id": Str(required=True), "parts": List(default=[], item=Obj(fields={
                 "part_number": Int(required=True), "etag": Str(required=True), "url": Str(default="")}))}),
            ("AbortMultipartUpload", "abort", artifact_views.abort_multipart_upload,
             {"path": Str(required=True), "upload_id": Str(required=True)}),
        )
    ],
    Rpc("GetPresignedDownloadUrl", "GET", "mlflow-artifacts/presigned/<path:artifact_path>",
        artifact_views.get_presigned_download_url, read(artifact_path="artifact_path"), atomic=False),
    Rpc("ListRunArtifacts", "GET", "mlflow/artifacts/list", artifact_views.list_run_artifacts, read(run="run_id"),
        fields={**RUN_REF, "path": Str(default=""), "page_token": Str()}, atomic=False),
    Rpc("GetRunArtifact", "GET", "get-artifact", artifact_views.get_run_artifact, read(run="run_id"),
        fields={**RUN_REF, "path": Str(default="")}, prefixes=("",), atomic=False),
    Rpc("UploadRunArtifact", "POST", "mlflow/upload-artifact", artifact_views.upload_run_artifact, update(run="run_uuid"),
        fields={**RUN_REF, "path": Str(default="")}, prefixes=("ajax-api/2.0",), raw_body=True, atomic=False),
    # logged models (MLflow 3)
    Rpc("CreateLoggedModel", "POST", "mlflow/logged-models", views.create_logged_model, update(experiment="experiment_id"),
        fields={"experiment_id": Str(required=True), "name": Str(default=""), "model_type": Str(default=""),
                "source_run_id": Str(default=""), "params": PARAMS, "tags": TAGS}),
    Rpc("SearchLoggedModels", "POST", "mlflow/logged-models/search", views.search_logged_models,
        read(),  # filtered to readable projects
        fields={"experiment_ids": List(item=Str(), default=[]), "filter": Str(default=""),
                "datasets": List(default=[], item=Obj(fields={"dataset_name": Str(required=True), "dataset_digest": Str(default="")})),
                "max_results": Int(bits=32), "page_token": Str(),
                "order_by": List(default=[], item=Obj(fields={
                    "field_name": Str(required=True), "ascending": Bool(), "dataset_name": Str(default=""),
                    "dataset_digest": Str(default="")}))}),
    Rpc("GetLoggedModel", "GET", "mlflow/logged-models/<str:model_id>", views.get_logged_model,
        read(logged_model="model_id"), fields={"allow_deleted": Bool(default=False)}),
    Rpc("FinalizeLoggedModel", "PATCH", "mlflow/logged-models/<str:model_id>", views.finalize_logged_model,
        update(logged_model="model_id"), fields={"status": LOGGED_MODEL_STATUS}),
    Rpc("DeleteLoggedModel", "DELETE", "mlflow/logged-models/<str:model_id>", views.delete_logged_model,
        delete(logged_model="model_id")),
    Rpc("SetLoggedModelTags", "PATCH", "mlflow/logged-models/<str:model_id>/tags", views.set_logged_model_tags,
        update(logged_model="model_id"), fields={"tags": TAGS}),
    Rpc("DeleteLoggedModelTag", "DELETE", "mlflow/logged-models/<str:model_id>/tags/<path:tag_key>",
        views.delete_logged_model_tag, update(logged_model="model_id")),
    Rpc("LogLoggedModelParams", "POST", "mlflow/logged-models/<str:model_id>/params", views.log_logged_model_params,
        update(logged_model="model_id"), fields={"params": PARAMS}),
    Rpc("ListLoggedModelArtifacts", "GET", "mlflow/logged-models/<str:model_id>/artifacts/directories",
        artifact_views.list_logged_model_artifacts, read(logged_model="model_id"),
        fields={"artifact_directory_path": Str(default=""), "page_token": Str()}, atomic=False),
    Rpc("GetLoggedModelArtifact", "GET", "mlflow/logged-models/<str:model_id>/artifacts/files",
        artifact_views.get_logged_model_artifact, read(logged_model="model_id"),
        fields={"artifact_file_path": Str(default="")}, prefixes=("ajax-api/2.0",), atomic=False),
    # capabilities
    Rpc("GetServerInfo", "GET", "mlflow/server-info", views.server_info, PUBLIC, prefixes=("api/3.0", "ajax-api/3.0")),
    # asked by the web UI only; public, and no transaction: they answer constants, touch no row
    Rpc("GetUiTelemetry", "GET", "mlflow/ui-telemetry", views.get_ui_telemetry, PUBLIC, prefixes=("ajax-api/3.0",),
        atomic=False),
    Rpc("PostUiTelemetry", "POST", "mlflow/ui-telemetry", views.post_ui_telemetry, PUBLIC, prefixes=("ajax-api/3.0",),
        atomic=False),
    *[
        Rpc("GatewayProxy", method, "mlflow/gateway-proxy", views.gateway_proxy, PUBLIC, prefixes=("ajax-api/2.0",),
            atomic=False)
        for method in ("GET", "POST")
    ],
]
