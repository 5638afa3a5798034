"""The tracking workflow with the MLflow 2.22 client, run in its own virtualenv by test_client_2x.py.

Prints one JSON line with what it logged, so the test can check it on the server side.
"""

import json
import sys

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

assert mlflow.__version__.startswith("2.22"), mlflow.__version__
client = MlflowClient()
experiment = mlflow.set_experiment("wf-exp-2x")
with mlflow.start_run(run_name="wf-run-2x") as run:
    mlflow.log_param("alpha", "0.5")
    mlflow.log_metric("rmse", 0.75, step=1)
    mlflow.log_metrics({"m1": 1.0, "m2": 2.0}, step=2)
    mlflow.log_params({"p1": "a"})
    mlflow.set_tag("team", "x")
    client.log_batch(run.info.run_id, metrics=[Metric("hist", float(i), 100 + i, i) for i in range(5)],
                     params=[Param("p2", "b")], tags=[RunTag("t", "v")])
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("loss", 0.5)

fetched = client.get_run(run.info.run_id)
assert fetched.info.status == "FINISHED", fetched.info
assert fetched.data.params == {"alpha": "0.5", "p1": "a", "p2": "b"}, fetched.data.params
assert fetched.data.metrics["hist"] == 4.0
assert [m.value for m in client.get_metric_history(run.info.run_id, "hist")] == [0.0, 1.0, 2.0, 3.0, 4.0]

found = mlflow.search_runs([experiment.experiment_id], "metrics.rmse < 1 and params.alpha = '0.5'",
                           order_by=["metrics.rmse DESC"], output_format="list")
assert [r.info.run_id for r in found] == [run.info.run_id], found
try:
    client.log_param(run.info.run_id, "alpha", "0.6")
    raise SystemExit("changing a param must fail")
except MlflowException as err:
    assert err.error_code == "INVALID_PARAMETER_VALUE", err.error_code

client.delete_run(child.info.run_id)
assert client.get_run(child.info.run_id).info.lifecycle_stage == "deleted"
client.restore_run(child.info.run_id)
experiments = [e.name for e in client.search_experiments()]
assert "wf-exp-2x" in experiments, experiments
json.dump({"experiment_id": experiment.experiment_id, "run_id": run.info.run_id, "child_id": child.info.run_id}, sys.stdout)
print()
