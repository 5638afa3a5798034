"""The registry workflow with the MLflow 2.22 client, run in its own virtualenv by
tests/registry/test_client2x_registry.py (2.x path: model files uploaded under the run's artifact root, then
runs/log-model, then registered-models/create and model-versions/create with the artifact URI as source).

Prints one JSON line with what it made, so the test can check the rows on the server side.
"""

import json
import sys
import warnings

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LinearRegression

assert mlflow.__version__.startswith("2.22"), mlflow.__version__
warnings.filterwarnings("ignore", category=FutureWarning)  # stages are deprecated in 2.x; still part of the workflow
NAME = "wf-model-2x"
X = np.array([[1.0], [2.0], [3.0]])
Y = np.array([2.0, 4.0, 6.0])


def predicts_double(uri: str) -> None:
    predicted = np.asarray(mlflow.pyfunc.load_model(uri).predict(X)).ravel()
    assert list(np.round(predicted, 6)) == [2.0, 4.0, 6.0], (uri, predicted)


def error_code(call, *args, **kwargs) -> str:
    try:
        call(*args, **kwargs)
    except MlflowException as err:
        return err.error_code
    raise SystemExit(f"{call.__name__}{args} must fail")


client = MlflowClient()
experiment = mlflow.set_experiment("wf-reg-2x")
with mlflow.start_run() as run:
    mlflow.log_param("alpha", "1")
    # pip_requirements given: the client skips its slow local requirement inference (no effect on the wire)
    info = mlflow.sklearn.log_model(LinearRegression().fit(X, Y), "model", registered_model_name=NAME,
                                    input_example=X, pip_requirements=["scikit-learn", "cloudpickle"])
run_id = run.info.run_id
model_source = f"{run.info.artifact_uri}/model"
assert str(info.registered_model_version) == "1", info.registered_model_version

first = client.get_model_version(NAME, "1")
assert first.source == model_source, first.source
assert first.run_id == run_id and first.status == "READY" and first.current_stage == "None", first
assert client.get_model_version_download_uri(NAME, "1") == model_source

# latest versions and stages
assert [v.version for v in client.get_latest_versions(NAME)] == ["1"]
assert [v.version for v in client.get_latest_versions(NAME, stages=["None"])] == ["1"]
assert client.get_latest_versions(NAME, stages=["Staging"]) == []
staged = client.transition_model_version_stage(NAME, "1", "Staging")
assert staged.current_stage == "Staging", staged
assert [v.version for v in client.get_latest_versions(NAME, stages=["Staging"])] == ["1"]

# alias, and loading by alias, stage and run
client.set_registered_model_alias(NAME, "prod", "1")
assert client.get_model_version_by_alias(NAME, "prod").version == "1"
assert client.get_registered_model(NAME).aliases == {"prod": "1"}
predicts_double(f"models:/{NAME}@prod")
predicts_double(f"models:/{NAME}/Staging")
predicts_double(f"models:/{NAME}/1")
predicts_double(f"runs:/{run_id}/model")

# a second version, from the run's model, then to Production archiving nothing else (v1 is in Staging)
second = mlflow.register_model(f"runs:/{run_id}/model", NAME)
assert second.version == "2" and second.run_id == run_id, second
client.transition_model_version_stage(NAME, "2", "Production", archive_existing_versions=True)
assert client.get_model_version(NAME, "1").current_stage == "Staging"
assert sorted((v.current_stage, v.version) for v in client.get_latest_versions(NAME)) == [
    ("Production", "2"), ("Staging", "1")]
predicts_double(f"models:/{NAME}/Production")
assert client.get_model_version_by_alias(NAME, "latest").version == "2"
assert error_code(client.transition_model_version_stage, NAME, "2", "Archived",
                  archive_existing_versions=True) == "INVALID_PARAMETER_VALUE"

# tags, descriptions and searches
client.set_registered_model_tag(NAME, "team", "eo")
client.set_model_version_tag(NAME, "1", "validated", "yes")
client.update_model_version(NAME, "1", description="first version")
client.create_registered_model("wf-temp-2x", description="to delete")
client.create_model_version("wf-temp-2x", model_source, run_id=run_id)
assert [m.name for m in client.search_registered_models()] == [NAME, "wf-temp-2x"]
assert [m.name for m in client.search_registered_models("tags.team = 'eo'")] == [NAME]
assert [m.name for m in client.search_registered_models(order_by=["name DESC"])] == ["wf-temp-2x", NAME]
assert [v.version for v in client.search_model_versions(f"name='{NAME}'")] == ["1", "2"]  # v1 updated last
assert [v.version for v in client.search_model_versions(f"name='{NAME}'", order_by=["version_number DESC"])] == [
    "2", "1"]
assert [v.version for v in client.search_model_versions("tags.validated = 'yes'")] == ["1"]
assert {(v.name, v.version) for v in client.search_model_versions(f"run_id = '{run_id}'")} == {
    (NAME, "1"), (NAME, "2"), ("wf-temp-2x", "1")}
assert error_code(client.get_model_version_by_alias, NAME, "nope") == "INVALID_PARAMETER_VALUE"
assert error_code(client.create_registered_model, NAME) == "RESOURCE_ALREADY_EXISTS"

# deletes: a version (its number stays taken), an alias, a whole model
client.delete_model_version(NAME, "2")
assert error_code(client.get_model_version, NAME, "2") == "RESOURCE_DOES_NOT_EXIST"
assert [v.version for v in client.search_model_versions(f"name='{NAME}'")] == ["1"]
client.set_registered_model_alias(NAME, "spare", "1")
client.delete_registered_model_alias(NAME, "spare")
client.delete_registered_model("wf-temp-2x")
assert error_code(client.get_registered_model, "wf-temp-2x") == "RESOURCE_DOES_NOT_EXIST"
assert [m.name for m in client.search_registered_models()] == [NAME]

json.dump({"experiment_id": experiment.experiment_id, "run_id": run_id, "name": NAME, "source": model_source},
          sys.stdout)
print()
