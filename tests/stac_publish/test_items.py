"""The STAC item of a model version (spec stac-publication.md §4-§5): rows made with the ORM, real MLmodel,
requirements.txt and model files in the artifact store, every item checked against the shipped schemas."""

import copy
import io
import json
import re
import uuid

import pytest
import yaml
from hypothesis import given, settings as hypothesis_settings, strategies as st
from jsonschema import Draft7Validator

from registry.models import (
    DELETED_STAGE,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)
from stac_publish import items
from stac_publish.eligibility import item_id
from tracking.artifacts import artifact_store
from tracking.models import Experiment, LoggedModel, LoggedModelParam, Param, Run

MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.5.2/schema.json"
CREATED, UPDATED = 1726826400000, 1726826700000  # 2024-09-20T10:00:00Z, 10:05:00Z
RUN_ID = "ab12cd34ef56ab12cd34ef56ab12cd34"
TRACKING = "https://sh.example.com/mlflow/group/wine-model/tracking/"

# §5.6, verbatim.
EXAMPLE = json.loads("""
{
  "stac_version": "1.0.0",
  "stac_extensions": ["https://stac-extensions.github.io/mlm/v1.5.2/schema.json", "https://stac-extensions.github.io/file/v2.1.0/schema.json"],
  "type": "Feature",
  "id": "mlflow-42-wine-model-v3",
  "collection": "ai-model",
  "geometry": null,
  "properties": {
    "title": "wine-model v3",
    "description": "Random forest wine quality classifier.",
    "datetime": "2024-09-20T10:00:00Z",
    "created": "2024-09-20T10:00:00Z",
    "updated": "2024-09-20T10:05:00Z",
    "mlm:name": "wine-model",
    "mlm:architecture": "RandomForest",
    "mlm:tasks": ["classification"],
    "mlm:framework": "scikit-learn",
    "mlm:framework_version": "1.5.1",
    "mlm:input": [
      {
        "name": "input",
        "description": "Columns: alcohol (double), pH (double)",
        "input": {
          "shape": [-1, 2],
          "dim_order": ["batch", "feature"],
          "data_type": "float64"
        }
      }
    ],
    "mlm:output": [
      {
        "name": "output",
        "tasks": ["classification"],
        "result": {
          "shape": [-1],
          "dim_order": ["batch"],
          "data_type": "int64"
        }
      }
    ],
    "mlm:hyperparameters": {
      "n_estimators": "100",
      "max_depth": "5"
    },
    "sharinghub:id": 42,
    "sharinghub:path": "group/wine-model",
    "mlflow:aliases": ["champion"]
  },
  "links": [
    {
      "rel": "mlflow:tracking-uri",
      "href": "https://sh.example.com/mlflow/group/wine-model/tracking/",
      "title": "MLflow - Tracking URI"
    },
    {
      "rel": "mlflow:model",
      "href": "https://sh.example.com/mlflow/group/wine-model/tracking/#/models/wine-model%20%2842%29/versions/3",
      "title": "wine-model v3",
      "mlflow:uri": "models:/wine-model (42)/3"
    },
    {
      "rel": "related",
      "href": "https://sh.example.com/api/stac/collections/ai-model/items/group/wine-model",
      "type": "application/geo+json",
      "title": "SharingHub project"
    }
  ],
  "assets": {
    "wine-model-v3.pkl": {
      "href": "https://sh.example.com/mlflow/group/wine-model/tracking/get-artifact?path=model%2Fmodel.pkl&run_uuid=ab12cd34ef56ab12cd34ef56ab12cd34",
      "title": "wine-model v3",
      "roles": ["mlm:model", "data"],
      "type": "application/octet-stream",
      "mlm:artifact_type": "mlflow.sklearn",
      "file:size": 525
    },
    "mlmodel": {
      "href": "https://sh.example.com/mlflow/group/wine-model/tracking/get-artifact?path=model%2FMLmodel&run_uuid=ab12cd34ef56ab12cd34ef56ab12cd34",
      "title": "MLmodel",
      "roles": ["metadata"],
      "type": "application/yaml"
    }
  }
}
""")

COLUMNS_IN = [{"type": "double", "name": "alcohol", "required": True}, {"type": "double", "name": "pH", "required": True}]
TENSOR_OUT = [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]


def sklearn_mlmodel(run_id: str = RUN_ID, *, inputs=COLUMNS_IN, outputs=TENSOR_OUT, model_id: str | None = None) -> dict:
    """An MLmodel as mlflow.sklearn.log_model writes it (signature parts are JSON strings inside the YAML)."""
    mlmodel = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {"env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                                "loader_module": "mlflow.sklearn", "model_path": "model.pkl",
                                "predict_fn": "predict", "python_version": "3.11.9"},
            "sklearn": {"code": None, "pickled_model": "model.pkl", "serialization_format": "cloudpickle",
                        "sklearn_version": "1.5.1"},
        },
        "mlflow_version": "2.16.0",
        "model_size_bytes": 525,
        "model_uuid": uuid.uuid4().hex,
        "run_id": run_id,
        "utc_time_created": "2024-09-20 10:00:00.000000",
    }
    if inputs is not None or outputs is not None:
        mlmodel["signature"] = {"inputs": json.dumps(inputs) if inputs is not None else None,
                                "outputs": json.dumps(outputs) if outputs is not None else None, "params": None}
    if model_id:
        mlmodel["model_id"] = model_id
    return mlmodel


def pytorch_mlmodel() -> dict:
    """A tensor-signature model whose python_function `data` is a directory (as mlflow.pytorch writes it)."""
    return {
        "artifact_path": "model",
        "flavors": {
            "python_function": {"data": "data", "loader_module": "mlflow.pytorch", "pickle_module_name": "mlflow.pytorch.pickle_module",
                                "python_version": "3.11.9"},
            "pytorch": {"code": None, "model_data": "data", "pytorch_version": "2.4.0"},
        },
        "mlflow_version": "3.1.0",
        "signature": {
            "inputs": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3, 224, 224]}, "name": "image"},
                                  {"type": "tensor", "tensor-spec": {"dtype": "object", "shape": [4]}}]),
            "outputs": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 10]}}]),
            "params": None,
        },
    }


def put(path: str, content: bytes) -> None:
    artifact_store().save(path, io.BytesIO(content))


def write_model_dir(root: str, mlmodel: dict, *, files: dict[str, bytes] | None = None,
                    requirements: str | None = "scikit-learn==1.5.1\ncloudpickle==3.0.0\n") -> None:
    put(f"{root}/MLmodel", yaml.safe_dump(mlmodel, sort_keys=False).encode())
    if requirements is not None:
        put(f"{root}/requirements.txt", requirements.encode())
    for name, content in (files if files is not None else {"model.pkl": b"\x80" * 525}).items():
        put(f"{root}/{name}", content)


@pytest.fixture
def publication(settings):
    settings.STAC_PUBLIC_BASE_URL = "https://sh.example.com/mlflow"
    settings.SHARINGHUB_URL = "https://sh.example.com"
    settings.STAC_PUBLISH_COLLECTION = "ai-model"
    settings.STAC_PUBLISH_MLM_SCHEMA = MLM_SCHEMA
    settings.STAC_PUBLISH_ITEM_ID_TEMPLATE = "mlflow-{project_id}-{model_slug}-v{version}"
    return settings


@pytest.fixture
def experiment(db):
    return Experiment.objects.create(name=f"wine {uuid.uuid4().hex[:8]}", artifact_location="", creation_time=CREATED,
                                     last_update_time=CREATED)


def make_model(name: str = "wine-model (42)", project: str | None = "group/wine-model", *, description=None,
               tags: dict | None = None) -> RegisteredModel:
    model = RegisteredModel.objects.create(name=name, project=project, creation_timestamp=CREATED,
                                           last_updated_timestamp=UPDATED, description=description)
    for key, value in (tags or {}).items():
        RegisteredModelTag.objects.create(registered_model=model, key=key, value=value)
    return model


def default_model() -> RegisteredModel:
    return RegisteredModel.objects.filter(name="wine-model (42)").first() or make_model()


def make_run(experiment, run_id: str | None = None, params: dict | None = None) -> Run:
    run_id = run_id or uuid.uuid4().hex
    run = Run.objects.create(run_uuid=run_id, experiment=experiment, artifact_uri=f"mlflow-artifacts:/{experiment.pk}/{run_id}/artifacts",
                             start_time=CREATED, status="FINISHED")
    for key, value in (params or {}).items():
        Param.objects.create(run=run, key=key, value=value)
    return run


def make_version(model: RegisteredModel, version: int, *, source: str, run_id=None, model_id=None, storage_location=None,
                 description="", tags: dict | None = None, stage="None", created=CREATED, updated=UPDATED) -> ModelVersion:
    row = ModelVersion.objects.create(
        registered_model=model, version=version, creation_timestamp=created, last_updated_timestamp=updated,
        description=description, current_stage=stage, source=source, storage_location=storage_location or source,
        run_id=run_id, model_id=model_id, status="READY")
    for key, value in (tags or {}).items():
        ModelVersionTag.objects.create(model_version=row, key=key, value=value)
    return row


def run_version(experiment, *, model=None, version: int = 3, mlmodel=None, files=None, requirements="scikit-learn==1.5.1\n",
                params=None, tags=None, run_id=None, **fields) -> ModelVersion:
    """A 2.x-style version: source mlflow-artifacts:/<exp>/<run>/artifacts/model, files written under it."""
    model = model or default_model()
    run = make_run(experiment, run_id, params if params is not None else {"n_estimators": "100", "max_depth": "5"})
    root = f"{experiment.pk}/{run.run_uuid}/artifacts/model"
    write_model_dir(root, mlmodel if mlmodel is not None else sklearn_mlmodel(run.run_uuid), files=files,
                    requirements=requirements)
    return make_version(model, version, source=f"mlflow-artifacts:/{root}", run_id=run.run_uuid,
                        tags=tags if tags is not None else {"mlm:tasks": '["classification"]'}, **fields)


def logged_model_version(experiment, *, model=None, version: int = 4, mlmodel=None, files=None, model_params=None,
                         run_params=None, tags=None) -> ModelVersion:
    """A 3.x-style version: source models:/m-<id>, files under the logged model's artifact location."""
    model = model or default_model()
    run = make_run(experiment, params=run_params if run_params is not None else {"run_only": "1"})
    model_id = f"m-{uuid.uuid4().hex}"
    location = f"mlflow-artifacts:/{experiment.pk}/models/{model_id}/artifacts"
    logged = LoggedModel.objects.create(model_id=model_id, experiment=experiment, name="model", artifact_location=location,
                                        creation_timestamp_ms=CREATED, last_updated_timestamp_ms=CREATED,
                                        status="LOGGED_MODEL_READY", source_run_id=run.run_uuid)
    for key, value in (model_params if model_params is not None else {"alpha": "0.5", "l1_ratio": "0.1"}).items():
        LoggedModelParam.objects.create(model=logged, key=key, value=value)
    write_model_dir(location.removeprefix("mlflow-artifacts:/"),
                    mlmodel if mlmodel is not None else sklearn_mlmodel(run.run_uuid, model_id=model_id), files=files)
    return make_version(model, version, source=f"models:/{model_id}", run_id=run.run_uuid, model_id=model_id,
                        storage_location=location, tags=tags if tags is not None else {"mlm:tasks": "classification"})


def build(version: ModelVersion) -> dict:
    return items.build_item(version.pk, item_id(version.registered_model.name, version.version))


def example_version() -> ModelVersion:
    """The model of §5.6: wine-model (42) v3 from run ab12..., sklearn, column input, tensor output, alias champion."""
    experiment = Experiment.objects.create(experiment_id=7, name=f"wine-7-{uuid.uuid4().hex[:6]}", artifact_location="",
                                           creation_time=CREATED, last_update_time=CREATED)
    model = make_model(description="Wine quality.")
    version = run_version(experiment, model=model, run_id=RUN_ID, description="Random forest wine quality classifier.",
                          tags={"mlm:tasks": '["classification"]', "mlm:architecture": "RandomForest"})
    RegisteredModelAlias.objects.create(registered_model=model, alias="champion", version=3)
    return version


def assert_valid(item: dict) -> None:
    """Valid per the shipped schemas, checked here independently of the builder's own validation."""
    registry = items.schema_registry()
    for uri in [items.CORE_ITEM_SCHEMA, *item["stac_extensions"]]:
        # The core schema wants a "collection" link beside "collection": the target adds it (see validate_item).
        document = {k: v for k, v in item.items() if k != "collection"} if uri == items.CORE_ITEM_SCHEMA else item
        errors = list(Draft7Validator(registry.contents(uri), registry=registry).iter_errors(document))
        assert errors == [], (uri, [e.message for e in errors])


# --- §5.6: the validated example -----------------------------------------------------------------------------------


def test_the_example_item_of_the_spec_is_built_field_by_field(publication, db):
    item = build(example_version())
    for key in ("stac_version", "stac_extensions", "type", "id", "collection", "geometry"):
        assert item[key] == EXAMPLE[key], key
    assert "bbox" not in item
    assert list(item["properties"]) == list(EXAMPLE["properties"])  # no field more, none less
    for key, value in EXAMPLE["properties"].items():
        assert item["properties"][key] == value, key
    assert item["links"] == EXAMPLE["links"]
    assert set(item["assets"]) == set(EXAMPLE["assets"])
    for key, asset in EXAMPLE["assets"].items():
        assert item["assets"][key] == asset, key
    assert item == EXAMPLE
    assert_valid(item)


def test_the_example_of_the_spec_validates_against_the_shipped_schemas(db):
    assert_valid(EXAMPLE)
    items.validate_item(copy.deepcopy(EXAMPLE))


def test_the_item_is_json_ready(publication, db):
    item = build(example_version())
    assert json.loads(json.dumps(item)) == item


# --- the shipped schemas -------------------------------------------------------------------------------------------


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_ref_of_the_shipped_schemas_resolves_offline():
    registry = items.schema_registry()
    checked = 0
    for uri, contents in items._schema_files().items():
        base = str(contents.get("$id", uri)).rstrip("#") or uri
        resolver = registry.resolver(base_uri=base)
        for ref in _refs(contents):
            resolver.lookup(ref)  # raises Unresolvable when something would have to be fetched
            checked += 1
    assert checked > 50
    assert MLM_SCHEMA in items.shipped_schema_uris()
    assert "https://stac-extensions.github.io/mlm/v1.4.0/schema.json" in items.shipped_schema_uris()


def test_the_task_enum_is_the_one_of_the_shipped_schema():
    schema = items.schema_registry().contents(MLM_SCHEMA)
    assert list(items.TASKS) == schema["$defs"]["mlm:tasks"]["items"]["enum"]
    assert items.MLM_NAME_PATTERN.pattern == schema["$defs"]["mlm:name"]["pattern"]
    assert items.HYPERPARAMETER_KEY.pattern in schema["$defs"]["mlm:hyperparameters"]["patternProperties"]
    assert items.SEMVER_PATTERN.pattern == schema["$defs"]["mlm:framework_version"]["pattern"]


def test_the_schema_rejects_an_item_without_tasks_and_the_reason_names_the_field(db):
    broken = copy.deepcopy(EXAMPLE)
    broken["properties"]["mlm:tasks"] = ["painting"]
    with pytest.raises(items.NotPublishable, match=r"properties\.mlm:tasks\[0\]"):
        items.validate_item(broken)
    broken = copy.deepcopy(EXAMPLE)
    del broken["assets"]["wine-model-v3.pkl"]["mlm:artifact_type"]
    with pytest.raises(items.NotPublishable, match="mlm:artifact_type"):
        items.validate_item(broken)


def test_a_schema_that_is_not_shipped_is_not_fetched_but_reported(publication, experiment):
    version = run_version(experiment)
    publication.STAC_PUBLISH_MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v9.9.9/schema.json"
    with pytest.raises(items.NotPublishable, match=r"stac_extensions: no offline copy of the schema .*v9\.9\.9"):
        build(version)


def test_the_mlm_v1_4_0_schema_can_be_configured(publication, experiment):
    publication.STAC_PUBLISH_MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
    item = build(run_version(experiment))
    assert item["stac_extensions"][0] == publication.STAC_PUBLISH_MLM_SCHEMA
    assert item["properties"]["mlm:input"][0]["bands"] == []  # required by v1.4.0 only
    assert_valid(item)
    publication.STAC_PUBLISH_MLM_SCHEMA = MLM_SCHEMA
    assert "bands" not in build(run_version(experiment, version=4))["properties"]["mlm:input"][0]


# --- §5.2: the mapping, rule by rule -------------------------------------------------------------------------------


def test_title_times_and_description_fall_back_to_the_model(publication, experiment):
    model = make_model(description="The model's description.")
    item = build(run_version(experiment, model=model, version=7, created=1726826400123, updated=1726826401000))
    properties = item["properties"]
    assert properties["title"] == "wine-model v7"
    assert properties["description"] == "The model's description."
    assert properties["datetime"] == properties["created"] == "2024-09-20T10:00:00.123000Z"
    assert properties["updated"] == "2024-09-20T10:00:01Z"
    assert item["id"] == "mlflow-42-wine-model-v7"


def test_no_description_anywhere_means_no_description(publication, experiment):
    item = build(run_version(experiment, model=make_model(description="  ")))
    assert "description" not in item["properties"]


def test_mlm_name_comes_from_the_tag_else_the_model_name_made_valid(publication, experiment):
    model = make_model("3D wine: model! (42)")
    item = build(run_version(experiment, model=model))
    assert item["properties"]["mlm:name"] == "D wine- model"
    assert item["properties"]["title"] == "3D wine: model! v3"
    tagged = run_version(experiment, model=model, version=4, tags={"mlm:tasks": "classification", "mlm:name": "Wine/RF"})
    assert build(tagged)["properties"]["mlm:name"] == "Wine-RF"
    short = run_version(experiment, model=make_model("x (43)", project="group/x"), version=1)
    assert build(short)["properties"]["mlm:name"] == "model-x"


@pytest.mark.parametrize("raw, expected", [
    ("wine-model (42)", "wine-model"),
    ("Wine Model", "Wine Model"),
    ("__init__", "init"),
    ("ab", "model-ab"),
    ("", "model"),
    ("1234", "model"),
    ("résumé (7)", "r-sum"),
    ("tab\there", "tab-here"),
])
def test_mlm_name_fix_up(raw, expected):
    assert items.mlm_name(raw) == expected
    assert items.MLM_NAME_PATTERN.fullmatch(expected)


def test_architecture_defaults_to_unknown(publication, experiment):
    assert build(run_version(experiment))["properties"]["mlm:architecture"] == "unknown"


@pytest.mark.parametrize("tag, expected", [
    ('["classification", "regression"]', ["classification", "regression"]),
    ("classification, regression", ["classification", "regression"]),
    ("classification", ["classification"]),
    ('"object-detection"', ["object-detection"]),
    ("classification,classification", ["classification"]),
])
def test_tasks_from_a_json_array_or_a_comma_list(publication, experiment, tag, expected):
    item = build(run_version(experiment, tags={"mlm:tasks": tag}))
    assert item["properties"]["mlm:tasks"] == expected
    assert [output["tasks"] for output in item["properties"]["mlm:output"]] == [expected]


@pytest.mark.parametrize("tag", ["painting", '["classification", "cooking"]', "Classification", "  ,  ", "[1, 2]", "{}"])
def test_tasks_outside_the_enum_are_not_publishable(publication, experiment, tag):
    with pytest.raises(items.NotPublishable, match="^mlm:tasks: "):
        build(run_version(experiment, tags={"mlm:tasks": tag}))


def test_without_tasks_the_version_is_held_and_its_owners_told(publication, experiment):
    version = run_version(experiment, tags={})
    with pytest.raises(items.NotPublishable) as raised:
        build(version)
    reason = str(raised.value)
    assert reason.startswith("mlm:tasks: ") and "classification" in reason
    items.record_problem(version.pk, reason)
    assert ModelVersionTag.objects.get(model_version=version, key=items.PROBLEM_TAG).value == reason
    items.record_problem(version.pk, "mlm:input: something else")  # an upsert: still one tag, the latest reason
    assert list(ModelVersionTag.objects.filter(model_version=version, key=items.PROBLEM_TAG).values_list("value", flat=True)) == [
        "mlm:input: something else"]
    ModelVersionTag.objects.create(model_version=version, key="mlm:tasks", value="classification")
    assert build(version)["properties"]["mlm:tasks"] == ["classification"]
    items.clear_problem(version.pk)
    assert not ModelVersionTag.objects.filter(model_version=version, key=items.PROBLEM_TAG).exists()
    assert ModelVersionTag.objects.filter(model_version=version).count() == 1


def test_record_problem_ignores_missing_and_deleted_versions_and_truncates(publication, experiment):
    items.record_problem(None, "no version")
    items.record_problem(987654321, "gone")
    version = run_version(experiment)
    items.record_problem(version.pk, "x" * 10_000)
    assert len(ModelVersionTag.objects.get(model_version=version, key=items.PROBLEM_TAG).value) == items.PROBLEM_MAX_LENGTH
    deleted = run_version(experiment, version=9, stage=DELETED_STAGE)
    items.record_problem(deleted.pk, "deleted")
    assert not ModelVersionTag.objects.filter(model_version=deleted).exclude(key="mlm:tasks").exists()
    items.clear_problem(None)


def test_record_problem_does_not_queue_a_publication(publication, experiment, settings):
    from stac_publish.models import PublicationJob

    settings.STAC_PUBLISH_URL = "http://127.0.0.1:9"
    version = run_version(experiment)
    items.record_problem(version.pk, "mlm:tasks: missing")
    items.clear_problem(version.pk)
    assert not PublicationJob.objects.exists()


def test_version_tags_override_model_tags(publication, experiment):
    model = make_model(tags={"mlm:architecture": "GradientBoosting", "mlm:tasks": "regression", "mlm:framework": "Weka"})
    inherited = run_version(experiment, model=model, version=1, tags={})
    properties = build(inherited)["properties"]
    assert properties["mlm:architecture"] == "GradientBoosting"
    assert properties["mlm:tasks"] == ["regression"]
    assert properties["mlm:framework"] == "Weka"
    own = run_version(experiment, model=model, version=2, tags={"mlm:architecture": "RandomForest", "mlm:tasks": "classification"})
    properties = build(own)["properties"]
    assert properties["mlm:architecture"] == "RandomForest"
    assert properties["mlm:tasks"] == ["classification"]
    assert properties["mlm:framework"] == "Weka"  # the model's tag still beats the flavor


def test_optional_mlm_tags_are_json_typed(publication, experiment):
    tags = {
        "mlm:tasks": "classification",
        "mlm:pretrained": "true",
        "mlm:pretrained_source": "null",
        "mlm:total_parameters": "1000",
        "mlm:memory_size": "2048",
        "mlm:batch_size_suggestion": "16",
        "mlm:accelerator": "cpu",
        "mlm:accelerator_constrained": "false",
        "mlm:accelerator_summary": "Any x86-64 CPU",
        "mlm:accelerator_count": "1",
        "mlm:framework_version": "1.5",  # JSON would make it a number: a string field keeps the text (as SemVer)
        "mlm:architecture": '"Random Forest"',
    }
    item = build(run_version(experiment, tags=tags))
    properties = item["properties"]
    assert properties["mlm:pretrained"] is True
    assert properties["mlm:pretrained_source"] is None
    assert properties["mlm:total_parameters"] == 1000
    assert properties["mlm:memory_size"] == 2048
    assert properties["mlm:batch_size_suggestion"] == 16
    assert properties["mlm:accelerator"] == "amd64"
    assert properties["mlm:accelerator_constrained"] is False
    assert properties["mlm:accelerator_summary"] == "Any x86-64 CPU"
    assert properties["mlm:accelerator_count"] == 1
    assert properties["mlm:framework_version"] == "1.5.0"
    assert properties["mlm:architecture"] == "Random Forest"
    assert_valid(item)


def test_absent_optional_fields_are_omitted(publication, experiment):
    properties = build(run_version(experiment))["properties"]
    for field in items.PASSTHROUGH_FIELDS:
        assert field not in properties
    assert "mlflow:aliases" not in properties and "mlflow:stage" not in properties


def test_unknown_and_asset_only_mlm_tags_are_ignored(publication, experiment, caplog):
    tags = {"mlm:tasks": "classification", "mlm:compile_method": "jit", "mlm:entrypoint": "x:y", "mlm:colour": "red"}
    item = build(run_version(experiment, tags=tags))
    assert not {"mlm:compile_method", "mlm:entrypoint", "mlm:colour"} & set(item["properties"])
    assert not any(key in asset for asset in item["assets"].values() for key in ("mlm:compile_method", "mlm:entrypoint"))
    assert "mlm:colour ignored" in caplog.text
    assert_valid(item)


def test_a_tag_value_the_schema_refuses_holds_the_version_naming_the_field(publication, experiment):
    with pytest.raises(items.NotPublishable, match=r"^properties\.mlm:total_parameters: .*schema https://stac-extensions"):
        build(run_version(experiment, tags={"mlm:tasks": "classification", "mlm:total_parameters": "many"}))
    with pytest.raises(items.NotPublishable, match=r"^properties\.mlm:accelerator"):
        build(run_version(experiment, version=4, tags={"mlm:tasks": "classification", "mlm:accelerator": "abacus"}))


def test_sharinghub_and_mlflow_properties(publication, experiment):
    model = make_model()
    version = run_version(experiment, model=model, stage="Production")
    RegisteredModelAlias.objects.create(registered_model=model, alias="prod", version=3)
    RegisteredModelAlias.objects.create(registered_model=model, alias="champion", version=3)
    RegisteredModelAlias.objects.create(registered_model=model, alias="old", version=1)
    properties = build(version)["properties"]
    assert properties["sharinghub:id"] == 42
    assert properties["sharinghub:path"] == "group/wine-model"
    assert properties["mlflow:aliases"] == ["champion", "prod"]
    assert properties["mlflow:stage"] == "Production"
    assert "sharinghub:access-level" not in properties


def test_without_a_sharinghub_url_there_is_no_related_link(publication, experiment):
    publication.SHARINGHUB_URL = ""
    item = build(run_version(experiment))
    assert [link["rel"] for link in item["links"]] == ["mlflow:tracking-uri", "mlflow:model"]


def test_without_a_public_base_url_the_item_cannot_be_built(publication, experiment):
    publication.STAC_PUBLIC_BASE_URL = ""
    with pytest.raises(items.NotPublishable, match="STAC_PUBLIC_BASE_URL"):
        build(run_version(experiment))


# --- §5.3: signatures -----------------------------------------------------------------------------------------------


def test_column_signatures_map_to_one_object_with_a_common_type(publication, experiment):
    inputs = [{"type": "long", "name": "age"}, {"type": "long", "name": "rooms"}, {"type": "long"}]
    outputs = [{"type": "float", "name": "price"}]
    properties = build(run_version(experiment, mlmodel=sklearn_mlmodel(inputs=inputs, outputs=outputs)))["properties"]
    assert properties["mlm:input"] == [{"name": "input", "description": "Columns: age (long), rooms (long), 2 (long)",
                                        "input": {"shape": [-1, 3], "dim_order": ["batch", "feature"], "data_type": "int64"}}]
    assert properties["mlm:output"] == [{"name": "output", "description": "Columns: price (float)", "tasks": ["classification"],
                                         "result": {"shape": [-1, 1], "dim_order": ["batch", "feature"], "data_type": "float32"}}]


@pytest.mark.parametrize("types, expected", [
    (["integer"], "int32"), (["long"], "int64"), (["float"], "float32"), (["double"], "float64"),
    (["string"], "other"), (["boolean"], "other"), (["double", "long"], "other"), (["double", "string"], "other"),
])
def test_column_type_mapping(publication, experiment, types, expected):
    inputs = [{"type": t, "name": f"c{i}"} for i, t in enumerate(types)]
    properties = build(run_version(experiment, mlmodel=sklearn_mlmodel(inputs=inputs)))["properties"]
    assert properties["mlm:input"][0]["input"]["data_type"] == expected


def test_tensor_signatures_map_to_one_object_per_tensor(publication, experiment):
    version = logged_model_version(experiment, mlmodel=pytorch_mlmodel(), files={"data/model.pth": b"\0" * 100})
    properties = build(version)["properties"]
    assert properties["mlm:input"] == [
        {"name": "image", "input": {"shape": [-1, 3, 224, 224], "dim_order": ["batch", "dim-a", "dim-b", "dim-c"],
                                    "data_type": "float32"}},
        {"name": "input-2", "input": {"shape": [4], "dim_order": ["dim-a"], "data_type": "other"}},
    ]
    assert properties["mlm:output"] == [
        {"name": "output", "tasks": ["classification"], "result": {"shape": [-1, 10], "dim_order": ["batch", "dim-a"],
                                                                   "data_type": "float32"}}]
    assert properties["mlm:framework"] == "PyTorch"
    assert properties["mlm:framework_version"] == "2.4.0"


def test_many_dimensions_get_letter_names():
    assert [items._letters(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == [
        "a", "b", "z", "aa", "ab", "az", "ba", "zz", "aaa"]


def test_a_signature_without_outputs_gives_an_empty_output_list(publication, experiment):
    item = build(run_version(experiment, mlmodel=sklearn_mlmodel(outputs=None)))
    assert item["properties"]["mlm:output"] == []
    assert_valid(item)


def test_no_signature_and_no_input_tag_is_not_publishable(publication, experiment):
    with pytest.raises(items.NotPublishable, match="^mlm:input: .*no signature"):
        build(run_version(experiment, mlmodel=sklearn_mlmodel(inputs=None, outputs=None)))


def test_input_and_output_tags_replace_the_signature(publication, experiment):
    model_input = {"name": "RGB", "bands": [], "input": {"shape": [-1, 3, 64, 64], "dim_order": ["batch", "channel", "height", "width"],
                                                       "data_type": "uint8"}}
    model_output = {"name": "classes", "tasks": ["scene-classification"],
                    "result": {"shape": [-1, 10], "dim_order": ["batch", "class"], "data_type": "float32"}}
    tags = {"mlm:tasks": "scene-classification", "mlm:input": json.dumps([model_input]), "mlm:output": json.dumps(model_output)}
    item = build(run_version(experiment, mlmodel=sklearn_mlmodel(inputs=None, outputs=None), tags=tags))
    assert item["properties"]["mlm:input"] == [model_input]
    assert item["properties"]["mlm:output"] == [model_output]
    assert_valid(item)
    no_tasks = {k: v for k, v in model_output.items() if k != "tasks"}
    tags = {**tags, "mlm:output": json.dumps([no_tasks])}
    item = build(run_version(experiment, version=4, tags=tags))
    assert item["properties"]["mlm:output"][0]["tasks"] == ["scene-classification"]  # filled from mlm:tasks


def test_an_invalid_input_tag_is_reported_with_its_path(publication, experiment):
    bad = [{"name": "x", "input": {"shape": [-2], "dim_order": ["batch"], "data_type": "float32"}}]
    with pytest.raises(items.NotPublishable, match=r"^properties\.mlm:input\[0\]"):
        build(run_version(experiment, tags={"mlm:tasks": "classification", "mlm:input": json.dumps(bad)}))
    with pytest.raises(items.NotPublishable, match="^mlm:input: the tag must be a JSON array"):
        build(run_version(experiment, version=4, tags={"mlm:tasks": "classification", "mlm:input": "not json"}))


def test_a_tensor_without_a_shape_is_reported(publication, experiment):
    mlmodel = sklearn_mlmodel(inputs=[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": []}, "name": "x"}])
    with pytest.raises(items.NotPublishable, match="^mlm:input: the tensor 'x'"):
        build(run_version(experiment, mlmodel=mlmodel))


# --- framework ------------------------------------------------------------------------------------------------------


def test_framework_version_falls_back_to_requirements(publication, experiment):
    mlmodel = sklearn_mlmodel()
    del mlmodel["flavors"]["sklearn"]["sklearn_version"]
    properties = build(run_version(experiment, mlmodel=mlmodel, requirements="mlflow==2.16.0\nscikit_learn == 1.4.2\n"))["properties"]
    assert properties["mlm:framework"] == "scikit-learn"
    assert properties["mlm:framework_version"] == "1.4.2"
    properties = build(run_version(experiment, version=4, mlmodel=mlmodel, requirements=None))["properties"]
    assert "mlm:framework_version" not in properties


@pytest.mark.parametrize("version, expected", [
    ("1.5.1", "1.5.1"), ("1.5", "1.5.0"), ("2", "2.0.0"), ("2.4.0+cu121", "2.4.0+cu121"), ("01.02.03", "1.2.3"),
    ("1.0.0-rc.1", "1.0.0-rc.1"), ("2.1.0.post1", None), ("1.0rc1", None), ("banana", None),
])
def test_framework_versions_are_semver(version, expected):
    assert items.semver(version) == expected
    if expected:
        assert items.SEMVER_PATTERN.match(expected)


def test_a_derived_framework_version_that_is_not_semver_is_left_out(publication, experiment):
    mlmodel = sklearn_mlmodel()
    mlmodel["flavors"]["sklearn"]["sklearn_version"] = "1.4.2.post1"
    item = build(run_version(experiment, mlmodel=mlmodel))
    assert "mlm:framework_version" not in item["properties"]
    with pytest.raises(items.NotPublishable, match=r"^properties\.mlm:framework_version: "):
        build(run_version(experiment, version=4, tags={"mlm:tasks": "classification", "mlm:framework_version": "banana"}))


def test_other_flavors_keep_their_name(publication, experiment):
    mlmodel = sklearn_mlmodel()
    mlmodel["flavors"] = {"python_function": {"loader_module": "mlflow.xgboost", "data": "model.xgb"},
                          "xgboost": {"xgb_version": "2.1.1", "data": "model.xgb", "model_class": "xgboost.sklearn.XGBClassifier"}}
    item = build(run_version(experiment, mlmodel=mlmodel, files={"model.xgb": b"x" * 10}))
    assert item["properties"]["mlm:framework"] == "xgboost"
    assert item["properties"]["mlm:framework_version"] == "2.1.1"
    asset = item["assets"]["wine-model-v3.xgb"]
    assert asset["mlm:artifact_type"] == "mlflow.xgboost" and asset["file:size"] == 10


def test_a_pyfunc_only_model_has_no_framework(publication, experiment):
    mlmodel = sklearn_mlmodel()
    mlmodel["flavors"] = {"python_function": {"loader_module": "mlflow.pyfunc.model", "python_model": "python_model.pkl"}}
    version = run_version(experiment, mlmodel=mlmodel, files={"python_model.pkl": b"p"})
    item = build(version)
    assert "mlm:framework" not in item["properties"] and "mlm:framework_version" not in item["properties"]
    mlmodel_size = len(yaml.safe_dump(mlmodel, sort_keys=False).encode())
    assert item["assets"]["wine-model-v3"] == {
        "href": f"{TRACKING}get-artifact?path=model%2FMLmodel&run_uuid={version.run_id}",
        "title": "wine-model v3", "roles": ["mlm:model", "data"], "type": "application/octet-stream",
        "mlm:artifact_type": "mlflow.pyfunc", "file:size": mlmodel_size}
    assert_valid(item)


def test_artifact_type_tag_wins(publication, experiment):
    tags = {"mlm:tasks": "classification", "mlm:artifact_type": "joblib.dump"}
    item = build(run_version(experiment, tags=tags))
    assert item["assets"]["wine-model-v3.pkl"]["mlm:artifact_type"] == "joblib.dump"
    assert "mlm:artifact_type" not in item["properties"]


# --- hyperparameters ------------------------------------------------------------------------------------------------


def test_hyperparameter_keys_are_sanitised_first_key_winning(publication, experiment):
    params = {"lr/init": "0.1", "lr:init": "0.2", "lr_init": "0.3", "layers[0].units": "64", "ok-key.v_2": "x"}
    properties = build(run_version(experiment, params=params))["properties"]
    # in code-point order of the logged keys: "lr/init" < "lr:init" < "lr_init", so "lr/init" wins
    assert properties["mlm:hyperparameters"] == {"layers_0_.units": "64", "lr_init": "0.1", "ok-key.v_2": "x"}
    assert all(items.HYPERPARAMETER_KEY.fullmatch(key) for key in properties["mlm:hyperparameters"])


def test_sanitize_hyperparameters_directly():
    assert items.sanitize_hyperparameters([("a b", 1), ("a_b", 2), ("é", 3), ("", 4)]) == {"a_b": 1, "_": 3}


def test_no_params_no_hyperparameters(publication, experiment):
    assert "mlm:hyperparameters" not in build(run_version(experiment, params={}))["properties"]


def test_hyperparameters_tag_wins_and_must_be_an_object(publication, experiment):
    tags = {"mlm:tasks": "classification", "mlm:hyperparameters": '{"epochs": 10, "opt/name": "adam"}'}
    assert build(run_version(experiment, tags=tags))["properties"]["mlm:hyperparameters"] == {"epochs": 10, "opt_name": "adam"}
    with pytest.raises(items.NotPublishable, match="^mlm:hyperparameters: "):
        build(run_version(experiment, version=4, tags={"mlm:tasks": "classification", "mlm:hyperparameters": "[1]"}))


# --- §5.5: the model asset and its hrefs ----------------------------------------------------------------------------


def test_run_relative_sources_link_get_artifact_like_sharinghub(publication, experiment):
    version = run_version(experiment)
    item = build(version)
    path = version.source.split("/artifacts/", 1)[1]
    assert path == "model"
    assert item["assets"]["wine-model-v3.pkl"]["href"] == f"{TRACKING}get-artifact?path=model%2Fmodel.pkl&run_uuid={version.run_id}"
    assert item["assets"]["mlmodel"]["href"] == f"{TRACKING}get-artifact?path=model%2FMLmodel&run_uuid={version.run_id}"


def test_logged_model_sources_link_the_model_version_route(publication, experiment):
    version = logged_model_version(experiment)
    item = build(version)
    base = f"{TRACKING}model-versions/get-artifact?name=wine-model%20%2842%29&version=4"
    assert item["assets"]["wine-model-v4.pkl"] == {
        "href": f"{base}&path=model.pkl", "title": "wine-model v4", "roles": ["mlm:model", "data"],
        "type": "application/octet-stream", "mlm:artifact_type": "mlflow.sklearn", "file:size": 525}
    assert item["assets"]["mlmodel"] == {"href": f"{base}&path=MLmodel", "title": "MLmodel", "roles": ["metadata"],
                                         "type": "application/yaml"}
    # 3.x: the logged model's params, not the run's
    assert item["properties"]["mlm:hyperparameters"] == {"alpha": "0.5", "l1_ratio": "0.1"}
    assert item["links"][1]["mlflow:uri"] == "models:/wine-model (42)/4"
    assert_valid(item)


def test_a_nested_model_file_and_a_guessed_media_type(publication, experiment):
    mlmodel = sklearn_mlmodel()
    mlmodel["flavors"]["python_function"]["model_path"] = "data/model.json"
    item = build(run_version(experiment, mlmodel=mlmodel, files={"data/model.json": b"{}"}))
    asset = item["assets"]["wine-model-v3.json"]
    assert asset["type"] == "application/json" and asset["file:size"] == 2
    assert asset["href"].split("?")[1].startswith("path=model%2Fdata%2Fmodel.json&")


def test_a_missing_model_file_falls_back_to_mlmodel(publication, experiment):
    item = build(run_version(experiment, files={}))
    assert set(item["assets"]) == {"wine-model-v3", "mlmodel"}
    assert "path=model%2FMLmodel&" in item["assets"]["wine-model-v3"]["href"]


def test_a_version_without_mlmodel_is_not_publishable(publication, experiment):
    model = make_model()
    run = make_run(experiment)
    version = make_version(model, 1, source=f"mlflow-artifacts:/{experiment.pk}/{run.run_uuid}/artifacts/nothing-here",
                           run_id=run.run_uuid, tags={"mlm:tasks": "classification"})
    with pytest.raises(items.NotPublishable, match="^MLmodel: no MLmodel file"):
        build(version)
    outside = make_version(model, 2, source="s3://elsewhere/model", run_id=run.run_uuid, tags={"mlm:tasks": "classification"})
    with pytest.raises(items.NotPublishable, match="^MLmodel: .*not in this server's artifact store"):
        build(outside)


def test_an_unavailable_artifact_store_means_retry_not_held(publication, experiment, monkeypatch):
    from mlflow_sh.errors import MlflowError
    from stac_publish.publisher import Retry

    version = run_version(experiment)

    def busy(path):
        raise MlflowError("The artifact store is busy: SlowDown.", "TEMPORARILY_UNAVAILABLE")

    monkeypatch.setattr(artifact_store(), "open", busy)
    with pytest.raises(Retry, match="busy"):
        build(version)


# --- when there is nothing to publish -------------------------------------------------------------------------------


def test_gone_deleted_projectless_renamed_and_unready_versions_give_none(publication, experiment):
    version = run_version(experiment)
    assert items.build_item(987654321, "mlflow-42-wine-model-v3") is None
    # renamed since the job was recorded: built under the job's id (the old id's deletion is queued after it)
    assert items.build_item(version.pk, "mlflow-42-other-v3")["id"] == "mlflow-42-other-v3"
    ModelVersion.objects.filter(pk=version.pk).update(status="PENDING_REGISTRATION")
    assert build(version) is None
    ModelVersion.objects.filter(pk=version.pk).update(status="READY", current_stage=DELETED_STAGE)
    assert build(version) is None
    ModelVersion.objects.filter(pk=version.pk).update(current_stage="None")
    assert build(version) is not None
    RegisteredModel.objects.filter(pk=version.registered_model_id).update(name="wine-model")  # no project id
    assert items.build_item(version.pk, "mlflow-42-wine-model-v3") is None
    RegisteredModel.objects.filter(pk=version.registered_model_id).update(name="wine-model (42)", project=None)
    assert items.build_item(version.pk, "mlflow-42-wine-model-v3") is None


def test_prompts_give_none(publication, experiment):
    model = make_model(tags={"mlflow.prompt.is_prompt": "true"})
    assert build(run_version(experiment, model=model)) is None


# --- property: any name gives a valid id and mlm:name ----------------------------------------------------------------


@hypothesis_settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=0, max_size=60), project_id=st.integers(min_value=1, max_value=10**9),
       version=st.integers(min_value=1, max_value=10**6))
def test_any_model_name_gives_a_valid_item_id_and_mlm_name(name, project_id, version):
    from django.conf import settings

    full = f"{name} ({project_id})"
    identifier = item_id(full, version)
    assert identifier is not None and re.fullmatch(r"[a-z0-9-]+", identifier), identifier
    if settings.STAC_PUBLISH_ITEM_ID_TEMPLATE == "mlflow-{project_id}-{model_slug}-v{version}":
        assert identifier.startswith(f"mlflow-{project_id}-") and identifier.endswith(f"-v{version}")
    for raw in (full, name):
        value = items.mlm_name(raw)
        assert items.MLM_NAME_PATTERN.fullmatch(value), (raw, value)
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_. -]*[A-Za-z0-9]", value)  # ASCII, spaces only: same in every regex dialect


@hypothesis_settings(max_examples=100, deadline=None)
@given(keys=st.lists(st.text(min_size=1, max_size=20), max_size=10))
def test_any_param_keys_give_valid_hyperparameter_keys(keys):
    result = items.sanitize_hyperparameters([(key, "v") for key in keys])
    assert all(items.HYPERPARAMETER_KEY.fullmatch(key) for key in result)
    assert len(result) == len({re.sub(r"[^0-9a-zA-Z_.-]", "_", key) for key in keys})


# --- a model written by MLflow itself ------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Hint:UserWarning")  # MLflow's note on integer outputs
def test_a_model_saved_by_mlflow_publishes(publication, experiment, tmp_path):
    """The MLmodel, requirements.txt and model.pkl that mlflow.sklearn.save_model writes, under a 3.x logged model."""
    import mlflow.sklearn
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"alcohol": [12.8, 13.2, 11.1, 14.0], "pH": [3.1, 3.4, 3.2, 3.0]})
    path = tmp_path / "model"
    mlflow.sklearn.save_model(LogisticRegression(max_iter=200).fit(frame, [0, 1, 0, 1]), path,
                              input_example=frame.head(2), pip_requirements=["scikit-learn==1.9.1"])
    files = {file.name: file.read_bytes() for file in path.iterdir() if file.is_file()}
    mlmodel = yaml.safe_load(files.pop("MLmodel"))
    version = logged_model_version(experiment, mlmodel=mlmodel, files=files)
    item = build(version)
    properties = item["properties"]
    assert properties["mlm:framework"] == "scikit-learn"
    assert items.SEMVER_PATTERN.match(properties["mlm:framework_version"])
    assert properties["mlm:input"] == [{"name": "input", "description": "Columns: alcohol (double), pH (double)",
                                        "input": {"shape": [-1, 2], "dim_order": ["batch", "feature"], "data_type": "float64"}}]
    assert properties["mlm:output"] == [{"name": "output", "description": "Columns: 0 (long)", "tasks": ["classification"],
                                         "result": {"shape": [-1, 1], "dim_order": ["batch", "feature"], "data_type": "int64"}}]
    model_file = mlmodel["flavors"]["python_function"]["model_path"]  # model.skops (skops) or model.pkl (pickle)
    asset = item["assets"][f"wine-model-v4{model_file[model_file.rindex('.'):]}"]
    assert asset["file:size"] == len(files[model_file]) and asset["mlm:artifact_type"] == "mlflow.sklearn"
    assert asset["href"].endswith(f"&path={model_file}")
    assert_valid(item)
