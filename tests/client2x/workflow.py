"""The tracking workflow with the MLflow 2.22 client, run in its own virtualenv by test_client_2x.py.

Prints one JSON line with what it logged, so the test can check it on the server side.
"""

import json
import os
import shutil
import sys
import tempfile

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

assert mlflow.__version__.startswith("2.22"), mlflow.__version__
client = MlflowClient()
experiment = mlflow.set_experiment("wf-exp-2x")

# Artifacts to log: one file, and a folder tree (binary, nested, a name with spaces).
workdir = tempfile.mkdtemp(prefix="wf-2x-")
source_files = {
    "hello.txt": b"hello from the 2.22 client",
    "tree/b.txt": b"b",
    "tree/sub/a.bin": os.urandom(200_000),
    "tree/sub/with space.txt": b"spaced",
}
for name, data in source_files.items():
    os.makedirs(os.path.dirname(os.path.join(workdir, "src", name)), exist_ok=True)
    with open(os.path.join(workdir, "src", name), "wb") as out:
        out.write(data)


def read_tree(folder):
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder).replace(os.sep, "/")] = handle.read()
    return found


with mlflow.start_run(run_name="wf-run-2x") as run:
    mlflow.log_artifact(os.path.join(workdir, "src", "hello.txt"), "docs")
    mlflow.log_artifacts(os.path.join(workdir, "src", "tree"), "tree")
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
assert fetched.info.artifact_uri == f"mlflow-artifacts:/{experiment.experiment_id}/{run.info.run_id}/artifacts", fetched.info

# Artifacts: listed (nested, with sizes) and downloaded back byte for byte, both download APIs.
listed = [(f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id)]
assert listed == [("docs", True), ("tree", True)], listed
listed = [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id, "tree")]
assert listed == [("tree/b.txt", False, 1), ("tree/sub", True, None)], listed
listed = [(f.path, f.file_size) for f in client.list_artifacts(run.info.run_id, "tree/sub")]
assert listed == [("tree/sub/a.bin", 200_000), ("tree/sub/with space.txt", 6)], listed
tree = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="tree", dst_path=os.path.join(workdir, "dl1"))
assert read_tree(tree) == {k[len("tree/"):]: v for k, v in source_files.items() if k.startswith("tree/")}
os.makedirs(os.path.join(workdir, "dl2"))  # this API wants an existing destination
hello = client.download_artifacts(run.info.run_id, "docs/hello.txt", os.path.join(workdir, "dl2"))
with open(hello, "rb") as handle:
    assert handle.read() == source_files["hello.txt"]
everything = mlflow.artifacts.download_artifacts(artifact_uri=fetched.info.artifact_uri, dst_path=os.path.join(workdir, "dl3"))
assert read_tree(everything) == {("docs/" + k if k == "hello.txt" else k): v for k, v in source_files.items()}
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
shutil.rmtree(workdir, ignore_errors=True)
json.dump({"experiment_id": experiment.experiment_id, "run_id": run.info.run_id, "child_id": child.info.run_id,
           "artifact_uri": fetched.info.artifact_uri}, sys.stdout)
print()
