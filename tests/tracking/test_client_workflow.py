"""The real MLflow 3.x client, unmodified, against a live server on loopback: the whole tracking workflow."""

import math

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

pytestmark = pytest.mark.django_db(transaction=True)


def test_fluent_workflow(mlflow_client):
    experiment = mlflow.set_experiment("wf-exp")
    with mlflow.start_run(run_name="wf-run") as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("rmse", 0.75, step=1)
        mlflow.log_params({"p1": "a", "p2": "b"})
        mlflow.log_metrics({"m1": 1.0, "m2": 2.0}, step=2)
        mlflow.set_tag("team", "x")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("loss", 0.1)
    fetched = mlflow_client.get_run(run.info.run_id)
    assert fetched.info.status == "FINISHED"
    assert fetched.info.run_name == "wf-run"
    assert fetched.info.artifact_uri == f"mlflow-artifacts:/{experiment.experiment_id}/{run.info.run_id}/artifacts"
    assert fetched.data.params == {"alpha": "0.5", "p1": "a", "p2": "b"}
    assert fetched.data.metrics == {"rmse": 0.75, "m1": 1.0, "m2": 2.0}
    assert fetched.data.tags["team"] == "x"
    assert fetched.data.tags["mlflow.runName"] == "wf-run"
    child_run = mlflow_client.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == run.info.run_id

    found = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string="metrics.rmse < 1 and params.alpha = '0.5'",
        order_by=["metrics.rmse DESC"],
        output_format="list",
    )
    assert [r.info.run_id for r in found] == [run.info.run_id]
    children = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'",
        output_format="list",
    )
    assert [r.info.run_id for r in children] == [child.info.run_id]


def test_client_logging_history_and_lifecycle(mlflow_client):
    experiment_id = mlflow_client.create_experiment("client-exp", tags={"owner": "me"})
    run = mlflow_client.create_run(experiment_id, run_name="r1", tags={"k": "v"})
    run_id = run.info.run_id
    mlflow_client.log_batch(
        run_id,
        metrics=[Metric("acc", 0.1 * i, 1000 + i, i) for i in range(50)] + [Metric("nan", math.nan, 5, 0)],
        params=[Param(f"p{i}", str(i)) for i in range(10)],
        tags=[RunTag("stage", "train")],
    )
    history = mlflow_client.get_metric_history(run_id, "acc")
    assert [m.step for m in history] == list(range(50))
    assert mlflow_client.get_run(run_id).data.metrics["acc"] == pytest.approx(4.9)
    assert math.isnan(mlflow_client.get_run(run_id).data.metrics["nan"])

    with pytest.raises(MlflowException, match="Changing param values is not allowed"):
        mlflow_client.log_param(run_id, "p1", "changed")
    mlflow_client.set_tag(run_id, "mlflow.runName", "renamed")
    assert mlflow_client.get_run(run_id).info.run_name == "renamed"
    mlflow_client.delete_tag(run_id, "stage")
    assert "stage" not in mlflow_client.get_run(run_id).data.tags

    mlflow_client.delete_run(run_id)
    assert mlflow_client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert mlflow_client.search_runs([experiment_id]) == []
    assert len(mlflow_client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)) == 1
    mlflow_client.restore_run(run_id)
    assert mlflow_client.get_run(run_id).info.lifecycle_stage == "active"

    mlflow_client.delete_experiment(experiment_id)
    assert mlflow_client.get_run(run_id).info.lifecycle_stage == "deleted"
    mlflow_client.restore_experiment(experiment_id)
    assert mlflow_client.get_run(run_id).info.lifecycle_stage == "active"

    mlflow_client.rename_experiment(experiment_id, "client-exp-2")
    mlflow_client.set_experiment_tag(experiment_id, "owner", "you")
    experiment = mlflow_client.get_experiment_by_name("client-exp-2")
    assert experiment.tags["owner"] == "you"
    assert mlflow_client.get_experiment_by_name("nope") is None
    names = [e.name for e in mlflow_client.search_experiments(filter_string="name LIKE 'client-%'")]
    assert names == ["client-exp-2"]


def test_log_input_and_dataset_search(mlflow_client):
    import pandas as pd

    mlflow.set_experiment("data-exp")
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]})
    dataset = mlflow.data.from_pandas(frame, name="train-df")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
    inputs = mlflow_client.get_run(run.info.run_id).inputs.dataset_inputs
    assert inputs[0].dataset.name == "train-df"
    assert {t.key: t.value for t in inputs[0].tags} == {"mlflow.data.context": "training"}
    found = mlflow.search_runs(filter_string="dataset.context = 'training'", output_format="list")
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_set_experiment_on_deleted_experiment_is_refused(mlflow_client):
    experiment_id = mlflow_client.create_experiment("to-delete")
    mlflow_client.delete_experiment(experiment_id)
    with pytest.raises(MlflowException, match="deleted"):
        mlflow.set_experiment("to-delete")


def test_pagination_through_the_client(mlflow_client):
    experiment_id = mlflow_client.create_experiment("paged")
    for i in range(7):
        mlflow_client.create_run(experiment_id, start_time=1000 + i)
    first = mlflow_client.search_runs([experiment_id], max_results=3)
    assert len(first) == 3 and first.token
    second = mlflow_client.search_runs([experiment_id], max_results=3, page_token=first.token)
    third = mlflow_client.search_runs([experiment_id], max_results=3, page_token=second.token)
    assert len(third) == 1 and not third.token
    starts = [r.info.start_time for r in [*first, *second, *third]]
    assert starts == sorted(starts, reverse=True)
