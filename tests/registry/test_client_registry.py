"""The real MLflow 3.x client against a live server: the registry workflow end to end (spec's 3.x-WF: log_model
with registered_model_name → register_model → set alias → load_model by alias, version and run → searches), then
stages, tags, rename and deletes, and the logged-model calls of the same workflow."""

import json

import mlflow
import numpy as np
import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LinearRegression

from registry.models import ModelVersion, RegisteredModel
from tracking.models import LoggedModel

pytestmark = pytest.mark.django_db(transaction=True)

X = np.array([[1.0], [2.0], [3.0]])
Y = np.array([2.0, 4.0, 6.0])


def error_code(call, *args, **kwargs) -> str:
    with pytest.raises(MlflowException) as raised:
        call(*args, **kwargs)
    return raised.value.error_code


def predicts_double(model) -> bool:
    return list(np.round(np.asarray(model.predict(X)).ravel(), 6)) == [2.0, 4.0, 6.0]


def test_registry_workflow_with_the_3x_client(mlflow_client):
    client = mlflow_client
    experiment = mlflow.set_experiment("wf-reg")
    with mlflow.start_run(run_name="wf-run") as run:
        mlflow.log_param("alpha", "0.5")
        # pip_requirements given: the client skips its slow local requirement inference (no effect on the wire)
        info = mlflow.sklearn.log_model(LinearRegression().fit(X, Y), name="model",
                                        registered_model_name="wf-model", input_example=X,
                                        pip_requirements=["scikit-learn"])
    run_id = run.info.run_id
    model_id = info.model_id
    assert str(info.registered_model_version) == "1"

    # what the server stored
    stored = ModelVersion.objects.get(registered_model__name="wf-model", version=1)
    logged = LoggedModel.objects.get(pk=model_id)
    assert stored.source == f"models:/{model_id}"
    assert stored.storage_location == logged.artifact_location
    assert stored.run_id == run_id and stored.status == "READY"

    # aliases and loading by alias, version and run
    client.set_registered_model_alias("wf-model", "champion", "1")
    assert predicts_double(mlflow.pyfunc.load_model("models:/wf-model@champion"))
    assert predicts_double(mlflow.pyfunc.load_model("models:/wf-model/1"))
    assert predicts_double(mlflow.pyfunc.load_model(f"runs:/{run_id}/model"))
    assert predicts_double(mlflow.sklearn.load_model(f"models:/{model_id}"))
    by_alias = client.get_model_version_by_alias("wf-model", "champion")
    assert by_alias.version == "1" and by_alias.aliases == ["champion"] and by_alias.run_id == run_id
    assert client.get_model_version_download_uri("wf-model", "1") == logged.artifact_location

    # register the same logged model again: version 2, recorded on the logged model
    again = mlflow.register_model(f"models:/{model_id}", "wf-model")
    assert again.version == "2" and again.status == "READY" and again.run_id == run_id
    registrations = json.loads(client.get_logged_model(model_id).tags["mlflow.modelVersions"])
    assert {(r["name"], int(r["version"])) for r in registrations} == {("wf-model", 1), ("wf-model", 2)}
    assert client.get_model_version_by_alias("wf-model", "latest").version == "2"
    assert predicts_double(mlflow.pyfunc.load_model("models:/wf-model/latest"))

    # a second model, registered from the run's artifact path
    client.create_registered_model("wf-other", tags={"team": "eo"}, description="other model")
    other = client.create_model_version("wf-other", f"runs:/{run_id}/model", run_id=run_id, tags={"k": "v"})
    assert other.version == "1" and other.tags == {"k": "v"}

    # searches with filters and order_by
    assert [m.name for m in client.search_registered_models()] == ["wf-model", "wf-other"]
    assert [m.name for m in client.search_registered_models(order_by=["name DESC"])] == ["wf-other", "wf-model"]
    assert [m.name for m in client.search_registered_models("tags.team = 'eo'")] == ["wf-other"]
    assert [m.name for m in client.search_registered_models("name LIKE 'wf-m%'")] == ["wf-model"]
    found = client.search_registered_models("name = 'wf-model'")[0]
    assert found.aliases == {"champion": "1"}
    assert [v.version for v in found.latest_versions] == ["2"]
    assert [v.version for v in client.search_model_versions("name='wf-model'")] == ["2", "1"]
    assert [v.version for v in client.search_model_versions("name='wf-model'", order_by=["version_number ASC"])] == [
        "1", "2"]
    assert {(v.name, v.version) for v in client.search_model_versions(f"run_id = '{run_id}'")} == {
        ("wf-model", "1"), ("wf-model", "2"), ("wf-other", "1")}
    assert [v.name for v in client.search_model_versions("tags.k = 'v'")] == ["wf-other"]
    paged = client.search_registered_models(max_results=1)
    assert len(paged) == 1 and paged.token
    assert [m.name for m in client.search_registered_models(max_results=1, page_token=paged.token)] == ["wf-other"]

    # stages (deprecated in 3.x, still served)
    assert client.transition_model_version_stage("wf-model", "1", "staging").current_stage == "Staging"
    client.transition_model_version_stage("wf-model", "2", "Staging", archive_existing_versions=True)
    assert client.get_model_version("wf-model", "1").current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions("wf-model", ["Staging"])] == ["2"]
    assert sorted(v.current_stage for v in client.get_latest_versions("wf-model")) == ["Archived", "Staging"]
    assert predicts_double(mlflow.pyfunc.load_model("models:/wf-model/Staging"))
    assert error_code(client.transition_model_version_stage, "wf-model", "1", "None",
                      archive_existing_versions=True) == "INVALID_PARAMETER_VALUE"

    # tags and descriptions
    client.set_registered_model_tag("wf-model", "owner", "me")
    client.set_model_version_tag("wf-model", "2", "validated", "yes")
    client.update_registered_model("wf-model", description="the model")
    client.update_model_version("wf-model", "2", description="second")
    registered = client.get_registered_model("wf-model")
    assert registered.tags == {"owner": "me"} and registered.description == "the model"
    version = client.get_model_version("wf-model", "2")
    assert version.tags == {"validated": "yes"} and version.description == "second"
    client.delete_registered_model_tag("wf-model", "owner")
    client.delete_model_version_tag("wf-model", "2", "validated")
    assert client.get_registered_model("wf-model").tags == {}
    assert client.get_model_version("wf-model", "2").tags == {}

    # rename: versions and aliases follow
    client.rename_registered_model("wf-model", "wf-model-2")
    assert client.get_model_version("wf-model-2", "1").run_id == run_id
    assert client.get_model_version_by_alias("wf-model-2", "champion").version == "1"
    assert predicts_double(mlflow.pyfunc.load_model("models:/wf-model-2@champion"))
    assert error_code(client.get_registered_model, "wf-model") == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(client.rename_registered_model, "wf-model-2", "wf-other") == "RESOURCE_ALREADY_EXISTS"
    assert error_code(client.get_model_version_by_alias, "wf-model-2", "nope") == "INVALID_PARAMETER_VALUE"
    assert error_code(client.set_registered_model_alias, "wf-model-2", "v3", "1") == "INVALID_PARAMETER_VALUE"

    # deletes
    client.delete_registered_model_alias("wf-model-2", "champion")
    assert client.get_registered_model("wf-model-2").aliases == {}
    client.delete_model_version("wf-model-2", "1")
    assert error_code(client.get_model_version, "wf-model-2", "1") == "RESOURCE_DOES_NOT_EXIST"
    assert [v.version for v in client.search_model_versions("name='wf-model-2'")] == ["2"]
    assert client.create_model_version("wf-model-2", f"models:/{model_id}", model_id=model_id).version == "3"
    client.delete_registered_model("wf-model-2")
    assert error_code(client.get_registered_model, "wf-model-2") == "RESOURCE_DOES_NOT_EXIST"
    assert [m.name for m in client.search_registered_models()] == ["wf-other"]
    assert not ModelVersion.objects.filter(registered_model__name="wf-model-2").exists()
    assert RegisteredModel.objects.count() == 1

    # the logged-model side of the workflow
    models = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list")
    assert [m.model_id for m in models] == [model_id]
    assert models[0].source_run_id == run_id and models[0].status == LoggedModelStatus.READY
    named = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], filter_string="name = 'model'",
                                        output_format="list")
    assert [m.model_id for m in named] == [model_id]
    fetched = client.get_logged_model(model_id)
    assert fetched.name == "model" and fetched.artifact_location == logged.artifact_location
    assert fetched.params == {"alpha": "0.5"}  # the run's params, copied at log time
    pending = client.create_logged_model(experiment.experiment_id, name="pending-model", source_run_id=run_id)
    assert pending.status == LoggedModelStatus.PENDING
    finalized = client.finalize_logged_model(pending.model_id, LoggedModelStatus.READY)
    assert finalized.status == LoggedModelStatus.READY
    assert client.get_logged_model(pending.model_id).status == LoggedModelStatus.READY
    assert len(mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list")) == 2


def test_prompts_stay_out_of_model_searches(mlflow_client):
    """A prompt registered by the 3.x client is a registered model tagged as a prompt: searches skip it."""
    client = mlflow_client
    client.create_registered_model("plain-model")
    prompt = mlflow.genai.register_prompt(name="greeting", template="Hello {{name}}!")
    assert prompt.version == 1
    assert mlflow.genai.load_prompt("prompts:/greeting/1").format(name="Ada") == "Hello Ada!"
    assert [m.name for m in client.search_registered_models()] == ["plain-model"]
    assert client.search_model_versions("name = 'greeting'") == []
    assert RegisteredModel.objects.filter(name="greeting", tags__key="mlflow.prompt.is_prompt").exists()
