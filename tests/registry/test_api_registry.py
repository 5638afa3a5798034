"""The model registry through raw HTTP: registered models, model versions, tags, aliases and a version's files
(spec §2.1 "Registered models", "Model versions", "Aliases" and their behavioural notes, §3.2 limits, §3.4;
response shapes as in golden/mlflow-3.18-wire.log). Every 200 is parsed with MLflow's protobuf message."""

import pytest

from registry.models import ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelAlias, RegisteredModelTag

RM = "/api/2.0/mlflow/registered-models"
MV = "/api/2.0/mlflow/model-versions"
VERSION_KEYS = ["name", "version", "creation_timestamp", "last_updated_timestamp", "current_stage", "description",
                "source", "run_id", "status", "run_link"]  # the golden log's order; run_id only when known


# --- helpers ----------------------------------------------------------------------------------------


def fails(api, method, path, body, status=400, error_code="INVALID_PARAMETER_VALUE"):
    response = api.request(method, path, body)
    assert response.status_code == status, response.content
    error = response.json()
    assert error["error_code"] == error_code, error
    return error["message"]


def create_model(api, name, **fields):
    return api.call("CreateRegisteredModel", "POST", f"{RM}/create", {"name": name, **fields})["registered_model"]


def get_model(api, name):
    return api.call("GetRegisteredModel", "GET", f"{RM}/get", {"name": name})["registered_model"]


def create_version(api, name, source, **fields):
    body = {"name": name, "source": source, **fields}
    return api.call("CreateModelVersion", "POST", f"{MV}/create", body)["model_version"]


def get_version(api, name, version):
    return api.call("GetModelVersion", "GET", f"{MV}/get", {"name": name, "version": str(version)})["model_version"]


def transition(api, name, version, stage, archive=False):
    body = {"name": name, "version": str(version), "stage": stage, "archive_existing_versions": archive}
    return api.call("TransitionModelVersionStage", "POST", f"{MV}/transition-stage", body)["model_version"]


def delete_version(api, name, version):
    api.call("DeleteModelVersion", "DELETE", f"{MV}/delete", {"name": name, "version": str(version)})


def set_alias(api, name, alias, version):
    api.call("SetRegisteredModelAlias", "POST", f"{RM}/alias", {"name": name, "alias": alias, "version": str(version)})


def by_alias(api, name, alias):
    return api.call("GetModelVersionByAlias", "GET", f"{RM}/alias", {"name": name, "alias": alias})["model_version"]


def download_uri(api, name, version):
    body = {"name": name, "version": str(version)}
    return api.call("GetModelVersionDownloadUri", "GET", f"{MV}/get-download-uri", body)["artifact_uri"]


def latest(api, name, stages=None, method="POST"):
    body = {"name": name} if stages is None else {"name": name, "stages": stages}
    response = api.call("GetLatestVersions", method, f"{RM}/get-latest-versions", body)
    return response.get("model_versions", [])


def run_artifact_uri(api, run_id):
    return api.call("GetRun", "GET", "/api/2.0/mlflow/runs/get", {"run_id": run_id})["run"]["info"]["artifact_uri"]


def new_run(api, experiment_id):
    body = {"experiment_id": experiment_id, "start_time": 2000}
    return api.call("CreateRun", "POST", "/api/2.0/mlflow/runs/create", body)["run"]["info"]["run_id"]


def logged_model(api, experiment_id, **fields):
    body = {"experiment_id": experiment_id, "name": "model", **fields}
    return api.call("CreateLoggedModel", "POST", "/api/2.0/mlflow/logged-models", body)["model"]["info"]


def logged_model_tags(api, model_id):
    info = api.call("GetLoggedModel", "GET", f"/api/2.0/mlflow/logged-models/{model_id}")["model"]["info"]
    return {t["key"]: t["value"] for t in info.get("tags", [])}


@pytest.fixture
def model(api):
    create_model(api, "reg")
    return "reg"


@pytest.fixture
def versions(api, model, run_id):
    """Three versions of "reg" from the fixture run."""
    return [create_version(api, model, f"runs:/{run_id}/model", run_id=run_id)["version"] for _ in range(3)]


# --- registered models: create / get --------------------------------------------------------------


def test_create_with_tags_and_description(api):
    tags = [{"key": "team", "value": "a"}, {"key": "mlflow.domain", "value": "eo"}]
    created = create_model(api, "with-tags", tags=tags, description="A model")
    assert list(created) == ["name", "creation_timestamp", "last_updated_timestamp", "description", "tags"]
    assert created["name"] == "with-tags"
    assert created["creation_timestamp"] == created["last_updated_timestamp"] > 0
    assert created["description"] == "A model"
    assert created["tags"] == tags
    assert get_model(api, "with-tags") == created


def test_create_without_description_omits_it(api):
    created = create_model(api, "plain")
    assert set(created) == {"name", "creation_timestamp", "last_updated_timestamp"}  # as in the golden log
    assert get_model(api, "plain") == created


def test_duplicate_name_is_refused(api, model):
    message = fails(api, "POST", f"{RM}/create", {"name": model}, error_code="RESOURCE_ALREADY_EXISTS")
    assert message == "Registered Model (name=reg) already exists."
    assert RegisteredModel.objects.filter(name=model).count() == 1
    assert get_model(api, model)["name"] == model  # the refused request left the transaction usable


# "." and ".." (and names starting with "..") would resolve to other names when used as paths: the reference
# refuses them (mlflow.utils.validation._validate_model_name → path_not_unique)
@pytest.mark.parametrize("name", ["", "   ", "a/b", "a:b", "models:/x", ".", "..", "..hidden"])
def test_invalid_names_are_refused(api, name):
    fails(api, "POST", f"{RM}/create", {"name": name})
    assert not RegisteredModel.objects.exists()


@pytest.mark.parametrize("new_name", ["a/b", "a:b", ".", ".."])
def test_invalid_new_names_are_refused(api, model, new_name):
    fails(api, "POST", f"{RM}/rename", {"name": model, "new_name": new_name})
    assert get_model(api, model)["name"] == model


def test_get_missing_model_is_404(api):
    message = fails(api, "GET", f"{RM}/get", {"name": "nope"}, status=404, error_code="RESOURCE_DOES_NOT_EXIST")
    assert message == "Registered Model with name=nope not found"


def test_the_ui_prefix_serves_the_registry(api, model, versions):
    """The UI calls the same RPCs under /ajax-api/2.0 (spec §1.1)."""
    ajax = "/ajax-api/2.0/mlflow"
    assert api.call("GetRegisteredModel", "GET", f"{ajax}/registered-models/get", {"name": model}) == {
        "registered_model": get_model(api, model)}
    found = api.call("SearchModelVersions", "GET", f"{ajax}/model-versions/search", {"filter": f"name = '{model}'"})
    assert [v["version"] for v in found["model_versions"]] == ["3", "2", "1"]
    api.call("SetRegisteredModelAlias", "POST", f"{ajax}/registered-models/alias",
             {"name": model, "alias": "ui", "version": "2"})
    assert by_alias(api, model, "ui")["version"] == "2"


def test_missing_name_parameter_is_400(api):
    fails(api, "GET", f"{RM}/get", {})


# --- rename / update / delete ---------------------------------------------------------------------


def test_rename_moves_versions_tags_and_aliases(api, model, versions, run_id):
    api.call("SetRegisteredModelTag", "POST", f"{RM}/set-tag", {"name": model, "key": "k", "value": "v"})
    set_alias(api, model, "champion", 2)
    before = get_model(api, model)
    renamed = api.call("RenameRegisteredModel", "POST", f"{RM}/rename", {"name": model, "new_name": "reg-2"})
    renamed = renamed["registered_model"]
    assert renamed["name"] == "reg-2"
    assert renamed["creation_timestamp"] == before["creation_timestamp"]
    assert renamed["last_updated_timestamp"] >= before["last_updated_timestamp"]
    assert [v["name"] for v in renamed["latest_versions"]] == ["reg-2"]
    assert renamed["tags"] == [{"key": "k", "value": "v"}]
    assert renamed["aliases"] == [{"alias": "champion", "version": "2"}]
    for number in versions:
        version = get_version(api, "reg-2", number)
        assert version["name"] == "reg-2" and version["run_id"] == run_id
    assert by_alias(api, "reg-2", "champion")["version"] == "2"
    fails(api, "GET", f"{RM}/get", {"name": model}, status=404, error_code="RESOURCE_DOES_NOT_EXIST")
    fails(api, "GET", f"{MV}/get", {"name": model, "version": "1"}, status=404, error_code="RESOURCE_DOES_NOT_EXIST")


def test_rename_touches_its_versions(api, model, versions):
    """As the reference store: renaming rewrites every version, and stamps them with the rename time."""
    renamed = api.call("RenameRegisteredModel", "POST", f"{RM}/rename", {"name": model, "new_name": "reg-2"})
    when = renamed["registered_model"]["last_updated_timestamp"]
    assert [get_version(api, "reg-2", v)["last_updated_timestamp"] for v in versions] == [when] * 3


def test_rename_to_an_existing_name_is_refused(api, model):
    create_model(api, "other")
    message = fails(api, "POST", f"{RM}/rename", {"name": model, "new_name": "other"},
                    error_code="RESOURCE_ALREADY_EXISTS")
    assert message == "Registered Model (name=other) already exists."
    assert get_model(api, model)["name"] == model


def test_rename_checks_the_new_name_and_the_model(api, model):
    fails(api, "POST", f"{RM}/rename", {"name": model, "new_name": "a/b"})
    fails(api, "POST", f"{RM}/rename", {"name": model})
    fails(api, "POST", f"{RM}/rename", {"name": "nope", "new_name": "x"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")


def test_update_sets_the_description(api, model):
    before = get_model(api, model)
    updated = api.call("UpdateRegisteredModel", "PATCH", f"{RM}/update", {"name": model, "description": "new text"})
    updated = updated["registered_model"]
    assert updated["description"] == "new text"
    assert updated["last_updated_timestamp"] >= before["last_updated_timestamp"]
    assert get_model(api, model) == updated
    fails(api, "PATCH", f"{RM}/update", {"name": "nope", "description": "x"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")


def test_delete_is_hard_and_cascades(api, model, versions):
    api.call("SetRegisteredModelTag", "POST", f"{RM}/set-tag", {"name": model, "key": "k", "value": "v"})
    api.call("SetModelVersionTag", "POST", f"{MV}/set-tag", {"name": model, "version": "1", "key": "k", "value": "v"})
    set_alias(api, model, "champion", 1)
    assert api.call("DeleteRegisteredModel", "DELETE", f"{RM}/delete", {"name": model}) == {}
    for table in (RegisteredModel, RegisteredModelTag, ModelVersion, ModelVersionTag, RegisteredModelAlias):
        assert not table.objects.exists(), table
    fails(api, "GET", f"{RM}/get", {"name": model}, status=404, error_code="RESOURCE_DOES_NOT_EXIST")
    fails(api, "DELETE", f"{RM}/delete", {"name": model}, status=404, error_code="RESOURCE_DOES_NOT_EXIST")
    create_model(api, model)  # the name is free again, and numbering starts over with the new model
    assert create_version(api, model, "s3://bucket/model")["version"] == "1"


# --- registered-model tags ------------------------------------------------------------------------


def test_registered_model_tags_set_overwrite_and_delete(api, model):
    set_tag = lambda key, value: api.call("SetRegisteredModelTag", "POST", f"{RM}/set-tag",  # noqa: E731
                                          {"name": model, "key": key, "value": value})
    assert set_tag("a", "1") == {}
    set_tag("b", "2")
    set_tag("a", "3")
    assert {t["key"]: t["value"] for t in get_model(api, model)["tags"]} == {"a": "3", "b": "2"}
    assert api.call("DeleteRegisteredModelTag", "DELETE", f"{RM}/delete-tag", {"name": model, "key": "a"}) == {}
    assert get_model(api, model)["tags"] == [{"key": "b", "value": "2"}]
    # deleting a key that is not there is a no-op
    assert api.call("DeleteRegisteredModelTag", "DELETE", f"{RM}/delete-tag", {"name": model, "key": "zzz"}) == {}
    fails(api, "POST", f"{RM}/set-tag", {"name": "nope", "key": "a", "value": "1"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")


def test_registered_model_tag_value_limit(api, model):
    api.call("SetRegisteredModelTag", "POST", f"{RM}/set-tag", {"name": model, "key": "max", "value": "x" * 100_000})
    fails(api, "POST", f"{RM}/set-tag", {"name": model, "key": "big", "value": "x" * 100_001})
    fails(api, "POST", f"{RM}/create", {"name": "big", "tags": [{"key": "k", "value": "x" * 100_001}]})
    assert [t["key"] for t in get_model(api, model)["tags"]] == ["max"]
    assert not RegisteredModel.objects.filter(name="big").exists()


def test_registered_model_tag_key_is_validated(api, model):
    fails(api, "POST", f"{RM}/set-tag", {"name": model, "key": "../x", "value": "1"})
    fails(api, "POST", f"{RM}/set-tag", {"name": model, "key": "k" * 251, "value": "1"})


# --- model versions: create and sources -----------------------------------------------------------


def test_create_version_from_a_run(api, model, run_id):
    before = get_model(api, model)
    version = create_version(api, model, f"runs:/{run_id}/model", run_id=run_id)
    assert list(version) == VERSION_KEYS
    assert version["name"] == model and version["version"] == "1"
    assert version["creation_timestamp"] == version["last_updated_timestamp"] >= before["creation_timestamp"]
    assert version["current_stage"] == "None"
    assert version["description"] == "" and version["run_link"] == ""
    assert version["source"] == f"runs:/{run_id}/model"
    assert version["run_id"] == run_id
    assert version["status"] == "READY"
    assert download_uri(api, model, 1) == run_artifact_uri(api, run_id) + "/model"
    assert get_version(api, model, 1) == version
    after = get_model(api, model)
    assert after["last_updated_timestamp"] == version["creation_timestamp"]
    assert after["latest_versions"] == [version]


def test_a_run_source_needs_its_run_id(api, model, run_id):
    """The reference refuses runs:/<id>/... unless run_id names that run (handlers._validate_source_run)."""
    fails(api, "POST", f"{MV}/create", {"name": model, "source": f"runs:/{run_id}/model"})
    assert not ModelVersion.objects.exists()


def test_create_version_with_description_link_and_tags(api, model):
    tags = [{"key": "k", "value": "v"}, {"key": "k2", "value": "v2"}]
    version = create_version(api, model, "s3://bucket/path/model", description="first", run_link="http://x/1",
                             tags=tags)
    assert version["description"] == "first"
    assert version["run_link"] == "http://x/1"
    assert version["tags"] == tags
    assert "run_id" not in version
    assert download_uri(api, model, 1) == "s3://bucket/path/model"


def test_create_version_from_a_logged_model(api, model, experiment_id, run_id):
    info = logged_model(api, experiment_id, source_run_id=run_id)
    model_id = info["model_id"]
    source = f"models:/{model_id}"
    version = create_version(api, model, source, model_id=model_id)
    assert list(version) == VERSION_KEYS  # model_id is not echoed (as the OSS store)
    assert version["source"] == source
    assert version["run_id"] == run_id  # the logged model's source run
    assert download_uri(api, model, 1) == info["artifact_uri"]
    assert logged_model_tags(api, model_id)["mlflow.modelVersions"] == '[{"name": "reg", "version": 1}]'
    create_version(api, model, source, model_id=model_id)
    assert logged_model_tags(api, model_id)["mlflow.modelVersions"] == (
        '[{"name": "reg", "version": 1}, {"name": "reg", "version": 2}]'
    )


def test_create_version_from_a_logged_model_without_run(api, model, experiment_id):
    model_id = logged_model(api, experiment_id)["model_id"]
    version = create_version(api, model, f"models:/{model_id}", model_id=model_id)
    assert "run_id" not in version


def test_a_logged_model_source_must_match_model_id(api, model, experiment_id):
    first = logged_model(api, experiment_id)["model_id"]
    second = logged_model(api, experiment_id)["model_id"]
    fails(api, "POST", f"{MV}/create", {"name": model, "source": f"models:/{first}", "model_id": second})
    assert not ModelVersion.objects.exists()


def test_a_logged_model_source_needs_its_model_id(api, model, experiment_id, run_id):
    """The reference refuses models:/<model_id> without the model_id parameter (handlers._validate_source_run)."""
    model_id = logged_model(api, experiment_id, source_run_id=run_id)["model_id"]
    fails(api, "POST", f"{MV}/create", {"name": model, "source": f"models:/{model_id}"})
    fails(api, "POST", f"{MV}/create", {"name": model, "source": f"models:/{model_id}", "run_id": run_id})
    assert not ModelVersion.objects.exists()
    assert "mlflow.modelVersions" not in logged_model_tags(api, model_id)


def test_create_version_from_another_registered_version(api, model, versions, run_id):
    create_model(api, "copy")
    version = create_version(api, "copy", f"models:/{model}/2")
    assert version["source"] == f"models:/{model}/2"
    assert version["run_id"] == run_id  # lineage: the run of the referenced version, as the reference resolves it
    assert download_uri(api, "copy", 1) == download_uri(api, model, 2)


def test_create_version_from_an_artifact_uri_under_the_run(api, model, run_id):
    source = run_artifact_uri(api, run_id) + "/model"
    version = create_version(api, model, source, run_id=run_id)
    assert version["source"] == source and version["run_id"] == run_id
    assert download_uri(api, model, 1) == source


@pytest.mark.parametrize("source, with_run", [
    ("/etc", False),
    ("/etc", True),
    ("file:///etc", False),
    ("file:///etc", True),
    ("relative/dir", True),
    ("runs:/{run}/../../other", True),
    ("runs:/{run}/model/../../../x", False),
    ("{root}/../../x", True),
    ("{root}/%2E%2E/%2e%2e/x", True),
    ("{root}/model%2f..%2f..%2fx", True),
    ("mlflow-artifacts:/0/elsewhere/artifacts/model", True),  # outside the run's root
    ("mlflow-artifacts:/0/elsewhere/artifacts/model", False),  # no run to be inside of
    ("{root}/model", False),  # even the run's own files need run_id to say so
    ("http://localhost:5000/api/2.0/mlflow-artifacts/artifacts/0/elsewhere/artifacts/model", True),
    ("http://localhost:5000/api/2.0/mlflow-artifacts/artifacts/0/elsewhere/artifacts/model", False),
    ("s3://bucket/./model", False),  # resolves to another path
    ("s3://bucket/x/%2e%2e/model", False),
    ("{root}-evil/model", True),  # a sibling that only shares a prefix
    ("runs:/{other}/model", True),  # another run than run_id
], ids=lambda v: str(v))
def test_refused_sources(api, model, experiment_id, run_id, source, with_run):
    other = new_run(api, experiment_id)
    source = source.format(run=run_id, other=other, root=run_artifact_uri(api, run_id))
    body = {"name": model, "source": source, **({"run_id": run_id} if with_run else {})}
    fails(api, "POST", f"{MV}/create", body)
    assert not ModelVersion.objects.exists()


def test_create_version_of_a_missing_model_is_404(api, run_id):
    fails(api, "POST", f"{MV}/create", {"name": "nope", "source": f"runs:/{run_id}/model"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")


def test_version_numbers_are_never_reused(api, model, versions):
    delete_version(api, model, 3)
    assert create_version(api, model, "s3://b/m")["version"] == "4"
    delete_version(api, model, 4)
    delete_version(api, model, 1)
    assert create_version(api, model, "s3://b/m")["version"] == "5"
    assert ModelVersion.objects.filter(registered_model__name=model).count() == 5  # deleted ones keep their numbers


# --- model versions: get / update / transition ----------------------------------------------------


def test_get_missing_version_is_404(api, model, versions):
    message = fails(api, "GET", f"{MV}/get", {"name": model, "version": "9"}, status=404,
                    error_code="RESOURCE_DOES_NOT_EXIST")
    assert message == "Model Version (name=reg, version=9) not found"
    fails(api, "GET", f"{MV}/get", {"name": "nope", "version": "1"}, status=404, error_code="RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("method, path, extra", [
    ("GET", f"{MV}/get", {}),
    ("GET", f"{MV}/get-download-uri", {}),
    ("PATCH", f"{MV}/update", {"description": "x"}),
    ("DELETE", f"{MV}/delete", {}),
    ("POST", f"{MV}/transition-stage", {"stage": "Staging", "archive_existing_versions": False}),
    ("POST", f"{MV}/set-tag", {"key": "k", "value": "v"}),
    ("POST", f"{RM}/alias", {"alias": "champion"}),
])
def test_version_must_be_an_integer(api, model, versions, method, path, extra):
    message = fails(api, method, path, {"name": model, "version": "abc", **extra})
    assert message == "Parameter 'version' must be an integer, got 'abc'."


def test_update_version_description(api, model, versions):
    before = get_version(api, model, 2)
    body = {"name": model, "version": "2", "description": "better"}
    updated = api.call("UpdateModelVersion", "PATCH", f"{MV}/update", body)["model_version"]
    assert updated["description"] == "better"
    assert updated["last_updated_timestamp"] >= before["last_updated_timestamp"]
    assert {k: v for k, v in updated.items() if k not in ("description", "last_updated_timestamp")} == {
        k: v for k, v in before.items() if k not in ("description", "last_updated_timestamp")}
    assert get_version(api, model, 2) == updated
    assert get_model(api, model)["last_updated_timestamp"] == updated["last_updated_timestamp"]


def test_transition_stage_is_case_insensitive(api, model, versions):
    moved = transition(api, model, 1, "staging")
    assert moved["current_stage"] == "Staging"
    assert transition(api, model, 1, "PRODUCTION")["current_stage"] == "Production"
    assert transition(api, model, 1, "archived")["current_stage"] == "Archived"
    assert transition(api, model, 1, "none")["current_stage"] == "None"
    assert get_version(api, model, 1)["current_stage"] == "None"


def test_transition_to_an_unknown_stage_is_refused(api, model, versions):
    body = {"name": model, "version": "1", "stage": "Deleted_Internal", "archive_existing_versions": False}
    fails(api, "POST", f"{MV}/transition-stage", body)
    fails(api, "POST", f"{MV}/transition-stage", {**body, "stage": "bogus"})
    assert get_version(api, model, 1)["current_stage"] == "None"


def test_archive_existing_versions_archives_the_others_in_that_stage(api, model, versions):
    transition(api, model, 1, "Production")
    transition(api, model, 2, "Staging")
    moved = transition(api, model, 3, "Production", archive=True)
    assert moved["current_stage"] == "Production"
    stages = {v: get_version(api, model, v)["current_stage"] for v in versions}
    assert stages == {"1": "Archived", "2": "Staging", "3": "Production"}
    transition(api, model, 1, "Staging", archive=True)
    stages = {v: get_version(api, model, v)["current_stage"] for v in versions}
    assert stages == {"1": "Staging", "2": "Archived", "3": "Production"}


@pytest.mark.parametrize("stage", ["None", "Archived", "archived"])
def test_archive_existing_versions_is_only_for_active_stages(api, model, versions, stage):
    transition(api, model, 1, "Production")
    body = {"name": model, "version": "2", "stage": stage, "archive_existing_versions": True}
    fails(api, "POST", f"{MV}/transition-stage", body)
    assert get_version(api, model, 1)["current_stage"] == "Production"
    assert get_version(api, model, 2)["current_stage"] == "None"


# --- deleting a version ---------------------------------------------------------------------------


def test_deleted_version_is_hidden_from_every_read(api, model, versions):
    set_alias(api, model, "champion", 3)
    set_alias(api, model, "stable", 1)
    assert api.call("DeleteModelVersion", "DELETE", f"{MV}/delete", {"name": model, "version": "3"}) == {}
    fails(api, "GET", f"{MV}/get", {"name": model, "version": "3"}, status=404, error_code="RESOURCE_DOES_NOT_EXIST")
    fails(api, "GET", f"{MV}/get-download-uri", {"name": model, "version": "3"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")
    fails(api, "PATCH", f"{MV}/update", {"name": model, "version": "3", "description": "x"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")
    fails(api, "DELETE", f"{MV}/delete", {"name": model, "version": "3"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")
    found = api.call("SearchModelVersions", "GET", f"{MV}/search", {"filter": f"name='{model}'"})["model_versions"]
    assert [v["version"] for v in found] == ["2", "1"]
    assert [v["version"] for v in latest(api, model)] == ["2"]  # the highest live one of stage None
    registered = get_model(api, model)
    assert [v["version"] for v in registered["latest_versions"]] == ["2"]
    assert registered["aliases"] == [{"alias": "stable", "version": "1"}]  # the alias on it went with it
    fails(api, "GET", f"{RM}/alias", {"name": model, "alias": "champion"})
    fails(api, "POST", f"{RM}/alias", {"name": model, "alias": "champion", "version": "3"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")
    assert by_alias(api, model, "latest")["version"] == "2"


# --- latest versions -----------------------------------------------------------------------------


@pytest.fixture
def staged(api, model, run_id):
    """v1 Production, v2 Staging, v3 None, v4 Staging, v5 Archived."""
    for stage in ["Production", "Staging", "None", "Staging", "Archived"]:
        number = create_version(api, model, f"runs:/{run_id}/model", run_id=run_id)["version"]
        if stage != "None":
            transition(api, model, number, stage)
    return model


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_latest_versions_per_stage(api, staged, method):
    by_stage = lambda versions: sorted((v["current_stage"], v["version"]) for v in versions)  # noqa: E731
    assert by_stage(latest(api, staged, method=method)) == [
        ("Archived", "5"), ("None", "3"), ("Production", "1"), ("Staging", "4")]
    assert by_stage(latest(api, staged, [], method=method)) == by_stage(latest(api, staged, method=method))
    assert by_stage(latest(api, staged, ["staging"], method=method)) == [("Staging", "4")]
    assert by_stage(latest(api, staged, ["Staging", "Production"], method=method)) == [
        ("Production", "1"), ("Staging", "4")]
    assert latest(api, staged, ["None"], method=method)[0]["version"] == "3"


def test_latest_versions_in_the_entity_and_aliases(api, staged):
    set_alias(api, staged, "champion", 4)
    entity = get_model(api, staged)
    assert sorted(v["version"] for v in entity["latest_versions"]) == ["1", "3", "4", "5"]
    assert all("aliases" not in v for v in entity["latest_versions"])  # as the golden log
    assert all(list(v) == VERSION_KEYS for v in entity["latest_versions"])
    assert entity["aliases"] == [{"alias": "champion", "version": "4"}]
    staging = latest(api, staged, ["Staging"])
    assert staging[0]["aliases"] == ["champion"]  # the get-latest-versions answer carries them (golden log)


def test_latest_versions_errors(api, staged):
    fails(api, "POST", f"{RM}/get-latest-versions", {"name": staged, "stages": ["bogus"]})
    fails(api, "POST", f"{RM}/get-latest-versions", {"name": "nope"}, status=404, error_code="RESOURCE_DOES_NOT_EXIST")


def test_latest_versions_of_a_model_without_versions(api, model):
    assert latest(api, model) == []
    assert "latest_versions" not in get_model(api, model)


# --- download URI ---------------------------------------------------------------------------------


def test_download_uri_of_each_source_kind(api, model, experiment_id, run_id):
    root = run_artifact_uri(api, run_id)
    create_version(api, model, f"runs:/{run_id}/sub/model", run_id=run_id)
    create_version(api, model, f"{root}/other", run_id=run_id)
    info = logged_model(api, experiment_id, source_run_id=run_id)
    create_version(api, model, f"models:/{info['model_id']}", model_id=info["model_id"])
    create_version(api, model, "s3://bucket/key")
    assert [download_uri(api, model, v) for v in range(1, 5)] == [
        f"{root}/sub/model", f"{root}/other", info["artifact_uri"], "s3://bucket/key"]
    fails(api, "GET", f"{MV}/get-download-uri", {"name": model, "version": "9"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")


# --- model-version tags ---------------------------------------------------------------------------


def test_model_version_tags(api, model, versions):
    set_tag = lambda key, value, version="2": api.call(  # noqa: E731
        "SetModelVersionTag", "POST", f"{MV}/set-tag", {"name": model, "version": version, "key": key, "value": value})
    delete_tag = lambda key: api.call(  # noqa: E731
        "DeleteModelVersionTag", "DELETE", f"{MV}/delete-tag", {"name": model, "version": "2", "key": key})
    assert set_tag("a", "1") == {}
    set_tag("b", "2")
    set_tag("a", "3")
    assert {t["key"]: t["value"] for t in get_version(api, model, 2)["tags"]} == {"a": "3", "b": "2"}
    assert "tags" not in get_version(api, model, 1)
    assert delete_tag("a") == {}
    assert get_version(api, model, 2)["tags"] == [{"key": "b", "value": "2"}]
    assert delete_tag("missing") == {}
    set_tag("max", "x" * 100_000)
    fails(api, "POST", f"{MV}/set-tag", {"name": model, "version": "2", "key": "big", "value": "x" * 100_001})
    fails(api, "POST", f"{MV}/set-tag", {"name": model, "version": "9", "key": "a", "value": "1"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")
    delete_version(api, model, 1)
    fails(api, "POST", f"{MV}/set-tag", {"name": model, "version": "1", "key": "a", "value": "1"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")
    assert sorted(t["key"] for t in get_version(api, model, 2)["tags"]) == ["b", "max"]


# --- aliases --------------------------------------------------------------------------------------


def test_set_and_get_alias(api, model, versions):
    assert api.call("SetRegisteredModelAlias", "POST", f"{RM}/alias",
                    {"name": model, "alias": "champion", "version": "2"}) == {}
    version = by_alias(api, model, "champion")
    assert version["version"] == "2"
    assert version["aliases"] == ["champion"]
    assert list(version) == VERSION_KEYS + ["aliases"]
    assert get_version(api, model, 2)["aliases"] == ["champion"]
    assert "aliases" not in get_version(api, model, 1)
    assert get_model(api, model)["aliases"] == [{"alias": "champion", "version": "2"}]


def test_set_alias_moves_it(api, model, versions):
    set_alias(api, model, "champion", 1)
    set_alias(api, model, "challenger", 1)
    set_alias(api, model, "champion", 3)
    assert by_alias(api, model, "champion")["version"] == "3"
    assert get_version(api, model, 1)["aliases"] == ["challenger"]
    assert get_version(api, model, 3)["aliases"] == ["champion"]
    assert sorted((a["alias"], a["version"]) for a in get_model(api, model)["aliases"]) == [
        ("challenger", "1"), ("champion", "3")]
    assert RegisteredModelAlias.objects.count() == 2


def test_several_aliases_on_one_version(api, model, versions):
    set_alias(api, model, "a", 2)
    set_alias(api, model, "b", 2)
    assert sorted(by_alias(api, model, "a")["aliases"]) == ["a", "b"]


def test_latest_alias_is_the_highest_version(api, model, versions):
    version = by_alias(api, model, "latest")
    assert version["version"] == "3"
    assert by_alias(api, model, "LATEST")["version"] == "3"


def test_unknown_alias_is_400(api, model, versions):
    response = api.request("GET", f"{RM}/alias", {"name": model, "alias": "nope"})
    assert response.status_code == 400
    error = response.json()
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert error["message"] == "Registered model alias nope not found."


def test_latest_alias_without_versions_is_404(api, model):
    """The reference: RESOURCE_DOES_NOT_EXIST "Latest version not found for model reg." (not the alias 400)."""
    fails(api, "GET", f"{RM}/alias", {"name": model, "alias": "latest"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")


def test_alias_of_a_missing_model_is_404(api):
    fails(api, "GET", f"{RM}/alias", {"name": "nope", "alias": "a"}, status=404, error_code="RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("alias", ["latest", "Latest", "v1", "V12", "a b", "a/b", "a.b", "x" * 256])
def test_invalid_or_reserved_aliases_are_refused(api, model, versions, alias):
    fails(api, "POST", f"{RM}/alias", {"name": model, "alias": alias, "version": "1"})
    assert not RegisteredModelAlias.objects.exists()


@pytest.mark.parametrize("alias", ["v1a", "version1", "a-b_c", "x" * 255])
def test_allowed_aliases(api, model, versions, alias):
    set_alias(api, model, alias, 1)
    assert by_alias(api, model, alias)["version"] == "1"


def test_alias_to_a_missing_version_is_404(api, model, versions):
    fails(api, "POST", f"{RM}/alias", {"name": model, "alias": "a", "version": "9"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")


def test_delete_alias(api, model, versions):
    set_alias(api, model, "champion", 1)
    assert api.call("DeleteRegisteredModelAlias", "DELETE", f"{RM}/alias", {"name": model, "alias": "champion"}) == {}
    fails(api, "GET", f"{RM}/alias", {"name": model, "alias": "champion"})
    assert "aliases" not in get_model(api, model)
    assert "aliases" not in get_version(api, model, 1)
    # a missing alias is a no-op; a missing model is not
    assert api.call("DeleteRegisteredModelAlias", "DELETE", f"{RM}/alias", {"name": model, "alias": "champion"}) == {}
    fails(api, "DELETE", f"{RM}/alias", {"name": "nope", "alias": "champion"}, status=404,
          error_code="RESOURCE_DOES_NOT_EXIST")


# --- a version's files: /model-versions/get-artifact ----------------------------------------------

# The artifact route runs outside a transaction (atomic=False), as in production; inside the test's own
# transaction, one error response would mark it for rollback and break the next request of the test.
no_test_transaction = pytest.mark.django_db(transaction=True)


def upload(api, path, content: bytes):
    response = api.request("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{path}", content,
                           content_type="application/octet-stream")
    assert response.status_code == 200, response.content


@pytest.fixture
def stored_version(api, experiment_id, run_id, local_store):
    upload(api, f"{experiment_id}/{run_id}/artifacts/model/MLmodel", b"flavors:\n  python_function: {}\n")
    upload(api, f"{experiment_id}/{run_id}/artifacts/model/data/weights.bin", b"\x00\x01\x02")
    upload(api, f"{experiment_id}/{run_id}/artifacts/secret.txt", b"outside the model")
    create_model(api, "files")
    create_version(api, "files", f"runs:/{run_id}/model", run_id=run_id)
    return "files"


def get_artifact(api, name, version, path):
    return api.request("GET", "/model-versions/get-artifact", {"name": name, "version": str(version), "path": path})


@no_test_transaction
def test_get_artifact_streams_a_file_of_the_version(api, stored_version):
    response = get_artifact(api, stored_version, 1, "MLmodel")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"flavors:\n  python_function: {}\n"
    assert response["Content-Disposition"].startswith("attachment")
    assert 'filename="MLmodel"' in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    nested = get_artifact(api, stored_version, 1, "data/weights.bin")
    assert nested.status_code == 200
    assert b"".join(nested.streaming_content) == b"\x00\x01\x02"


@no_test_transaction
def test_get_artifact_of_a_logged_model_version(api, experiment_id, run_id, local_store):
    info = logged_model(api, experiment_id, source_run_id=run_id)
    upload(api, f"{experiment_id}/models/{info['model_id']}/artifacts/MLmodel", b"logged")
    create_model(api, "from-logged")
    create_version(api, "from-logged", f"models:/{info['model_id']}", model_id=info["model_id"])
    response = get_artifact(api, "from-logged", 1, "MLmodel")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"logged"


@no_test_transaction
@pytest.mark.parametrize("path", ["../secret.txt", "../../", "%2e%2e/secret.txt", "/etc/passwd", "a/../../secret.txt"])
def test_get_artifact_path_cannot_escape(api, stored_version, path):
    response = get_artifact(api, stored_version, 1, path)
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@no_test_transaction
def test_get_artifact_errors(api, stored_version):
    assert get_artifact(api, stored_version, 9, "MLmodel").status_code == 404
    assert get_artifact(api, "nope", 1, "MLmodel").status_code == 404
    assert get_artifact(api, stored_version, "abc", "MLmodel").status_code == 400
    assert get_artifact(api, stored_version, 1, "missing.txt").status_code == 404
    create_model(api, "remote")
    create_version(api, "remote", "s3://elsewhere/model")
    assert get_artifact(api, "remote", 1, "MLmodel").status_code == 400  # not in this server's store
