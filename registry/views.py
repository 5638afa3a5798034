"""One handler per registry RPC: a decoded request dict in, an MLflow response dict out."""

from mlflow_sh.errors import MlflowError
from mlflow_sh.wire import non_empty, with_page_token
from registry import payloads, selectors, services
from registry.models import ModelVersion
from tracking.artifact_views import download_response
from tracking.artifacts import join, safe_path, store_path_from_uri
from tracking.selectors import check_max_results

MAX_MODEL_RESULTS = 1000
MAX_VERSION_RESULTS = 200_000


def create_registered_model(request, data):
    services.registered_model_create(name=data["name"], tags=data["tags"], description=data["description"],
                                     project=request.project_path)
    return {"registered_model": selectors.registered_model_get(data["name"])}


def get_registered_model(request, data):
    return {"registered_model": selectors.registered_model_get(data["name"])}


def rename_registered_model(request, data):
    if not data["new_name"]:
        raise MlflowError.invalid("Missing value for required parameter 'new_name'.")
    services.registered_model_rename(name=data["name"], new_name=data["new_name"])
    return {"registered_model": selectors.registered_model_get(data["new_name"])}


def update_registered_model(request, data):
    services.registered_model_update(name=data["name"], description=data["description"])
    return {"registered_model": selectors.registered_model_get(data["name"])}


def delete_registered_model(request, data):
    services.registered_model_delete(name=data["name"])
    return {}


def search_registered_models(request, data):
    max_results = check_max_results(data["max_results"], default=100, limit=MAX_MODEL_RESULTS)
    models, token = selectors.registered_models_search(
        filter_string=data["filter"], order_by=data["order_by"], max_results=max_results, token=data["page_token"],
        projects=request.readable_projects,
    )
    return with_page_token(non_empty(registered_models=models), token)


def get_latest_versions(request, data):
    return non_empty(model_versions=selectors.latest_versions(data["name"], data["stages"]))


def set_registered_model_tag(request, data):
    services.registered_model_set_tag(name=data["name"], key=data["key"], value=data["value"])
    return {}


def delete_registered_model_tag(request, data):
    services.registered_model_delete_tag(name=data["name"], key=data["key"])
    return {}


def create_model_version(request, data):
    pk = services.model_version_create(
        name=data["name"], source=data["source"], run_id=data["run_id"], tags=data["tags"],
        run_link=data["run_link"], description=data["description"], model_id=data["model_id"],
    )
    return {"model_version": payloads.model_versions(ModelVersion.objects.filter(pk=pk))[0]}


def get_model_version(request, data):
    return {"model_version": selectors.model_version_get(data["name"], data["version"])}


def update_model_version(request, data):
    services.model_version_update(name=data["name"], version=data["version"], description=data["description"])
    return {"model_version": selectors.model_version_get(data["name"], data["version"])}


def transition_model_version_stage(request, data):
    services.model_version_transition(
        name=data["name"], version=data["version"], stage=data["stage"],
        archive_existing_versions=bool(data["archive_existing_versions"]),
    )
    return {"model_version": selectors.model_version_get(data["name"], data["version"])}


def delete_model_version(request, data):
    services.model_version_delete(name=data["name"], version=data["version"])
    return {}


def search_model_versions(request, data):
    max_results = check_max_results(data["max_results"], default=MAX_VERSION_RESULTS, limit=MAX_VERSION_RESULTS)
    versions, token = selectors.model_versions_search(
        filter_string=data["filter"], order_by=data["order_by"], max_results=max_results, token=data["page_token"],
        projects=request.readable_projects,
    )
    return with_page_token(non_empty(model_versions=versions), token)


def get_model_version_download_uri(request, data):
    return {"artifact_uri": selectors.download_uri(data["name"], data["version"])}


def set_model_version_tag(request, data):
    services.model_version_set_tag(name=data["name"], version=data["version"], key=data["key"], value=data["value"])
    return {}


def delete_model_version_tag(request, data):
    services.model_version_delete_tag(name=data["name"], version=data["version"], key=data["key"])
    return {}


def set_registered_model_alias(request, data):
    services.alias_set(name=data["name"], alias=data["alias"], version=data["version"])
    return {}


def delete_registered_model_alias(request, data):
    services.alias_delete(name=data["name"], alias=data["alias"])
    return {}


def get_model_version_by_alias(request, data):
    return {"model_version": selectors.version_by_alias(data["name"], data["alias"])}


def get_model_version_artifact(request, data):
    """A file of a version, through its download URI (the UI and SharingHub read models this way)."""
    location = selectors.download_uri(data["name"], data["version"])
    root = store_path_from_uri(location)
    if root is None:
        raise MlflowError.invalid(f"The files of this version live at {location}, outside this server's store.")
    return download_response(join(root, safe_path(data["path"] or "")))
