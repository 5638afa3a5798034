"""The registry rows of the route table."""

from mlflow_sh.routing import Rpc
from mlflow_sh.rules import create, delete, guard, read, update
from mlflow_sh.wire import Bool, Int, List, Obj, Str
from registry import views
from tracking.routes import TAGS

NAME = {"name": Str(required=True)}
VERSION = {**NAME, "version": Str(required=True)}
SEARCH = {"filter": Str(default=""), "max_results": Int(), "order_by": List(item=Str(), default=[]), "page_token": Str()}
MODEL = "name"  # the field naming the registered model each rule is about

RPCS = [
    # registered models
    Rpc("CreateRegisteredModel", "POST", "mlflow/registered-models/create", views.create_registered_model,
        create(project=MODEL),
        fields={**NAME, "tags": TAGS, "description": Str(), "deployment_job_id": Str(default="")}),
    Rpc("GetRegisteredModel", "GET", "mlflow/registered-models/get", views.get_registered_model,
        read(registered_model=MODEL), fields=NAME),
    Rpc("RenameRegisteredModel", "POST", "mlflow/registered-models/rename", views.rename_registered_model,
        update(registered_model=MODEL) & guard("suffix:new_name"), fields={**NAME, "new_name": Str(default="")}),
    Rpc("UpdateRegisteredModel", "PATCH", "mlflow/registered-models/update", views.update_registered_model,
        update(registered_model=MODEL), fields={**NAME, "description": Str(), "deployment_job_id": Str(default="")}),
    Rpc("DeleteRegisteredModel", "DELETE", "mlflow/registered-models/delete", views.delete_registered_model,
        delete(registered_model=MODEL), fields=NAME),
    *[
        Rpc("SearchRegisteredModels", method, "mlflow/registered-models/search", views.search_registered_models,
            read(), fields=SEARCH)
        for method in ("GET", "POST")
    ],
    *[
        Rpc("GetLatestVersions", method, "mlflow/registered-models/get-latest-versions", views.get_latest_versions,
            read(registered_model=MODEL), fields={**NAME, "stages": List(item=Str(), default=[])})
        for method in ("POST", "GET")
    ],
    Rpc("SetRegisteredModelTag", "POST", "mlflow/registered-models/set-tag", views.set_registered_model_tag,
        update(registered_model=MODEL) & guard("project_tag:key"), fields={**NAME, "key": Str(required=True), "value": Str(default="")}),
    Rpc("DeleteRegisteredModelTag", "DELETE", "mlflow/registered-models/delete-tag", views.delete_registered_model_tag,
        update(registered_model=MODEL) & guard("project_tag:key"), fields={**NAME, "key": Str(required=True)}),
    # model versions
    Rpc("CreateModelVersion", "POST", "mlflow/model-versions/create", views.create_model_version,
        # what it is made from must be readable, and in a project view belong to the same project
        update(registered_model=MODEL) & read(run="run_id", logged_model="model_id", model_source="source"),
        fields={**NAME, "source": Str(required=True), "run_id": Str(default=""), "tags": TAGS,
                "run_link": Str(default=""), "description": Str(default=""), "model_id": Str(default="")}),
    Rpc("GetModelVersion", "GET", "mlflow/model-versions/get", views.get_model_version,
        read(registered_model=MODEL), fields=VERSION),
    Rpc("UpdateModelVersion", "PATCH", "mlflow/model-versions/update", views.update_model_version,
        update(registered_model=MODEL), fields={**VERSION, "description": Str()}),
    Rpc("TransitionModelVersionStage", "POST", "mlflow/model-versions/transition-stage",
        views.transition_model_version_stage, update(registered_model=MODEL),
        fields={**VERSION, "stage": Str(required=True), "archive_existing_versions": Bool(default=False)}),
    Rpc("DeleteModelVersion", "DELETE", "mlflow/model-versions/delete", views.delete_model_version,
        delete(registered_model=MODEL), fields=VERSION),
    *[
        Rpc("SearchModelVersions", method, "mlflow/model-versions/search", views.search_model_versions, read(),
            fields=SEARCH)
        for method in ("GET", "POST")
    ],
    Rpc("GetModelVersionDownloadUri", "GET", "mlflow/model-versions/get-download-uri",
        views.get_model_version_download_uri, read(registered_model=MODEL), fields=VERSION),
    Rpc("SetModelVersionTag", "POST", "mlflow/model-versions/set-tag", views.set_model_version_tag,
        update(registered_model=MODEL), fields={**VERSION, "key": Str(required=True), "value": Str(default="")}),
    Rpc("DeleteModelVersionTag", "DELETE", "mlflow/model-versions/delete-tag", views.delete_model_version_tag,
        delete(registered_model=MODEL), fields={**VERSION, "key": Str(required=True)}),
    # aliases
    Rpc("SetRegisteredModelAlias", "POST", "mlflow/registered-models/alias", views.set_registered_model_alias,
        update(registered_model=MODEL), fields={**NAME, "alias": Str(required=True), "version": Str(required=True)}),
    Rpc("DeleteRegisteredModelAlias", "DELETE", "mlflow/registered-models/alias", views.delete_registered_model_alias,
        delete(registered_model=MODEL), fields={**NAME, "alias": Str(required=True)}),
    Rpc("GetModelVersionByAlias", "GET", "mlflow/registered-models/alias", views.get_model_version_by_alias,
        read(registered_model=MODEL), fields={**NAME, "alias": Str(required=True)}),
    # a version's files, as the UI and SharingHub read them
    Rpc("GetModelVersionArtifact", "GET", "model-versions/get-artifact", views.get_model_version_artifact,
        read(registered_model=MODEL), fields={**VERSION, "path": Str(default="")}, prefixes=("",), atomic=False),
]
