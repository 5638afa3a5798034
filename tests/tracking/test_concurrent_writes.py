"""Writes that are one SQL statement each (a run with its tags, a batch of metrics, params and tags), through a live
server in autocommit as in production: concurrent writers lose nothing, and a statement that fails leaves nothing."""

import random
from concurrent.futures import ThreadPoolExecutor

import requests

from tracking.models import LatestMetric, Metric, Param, Run, RunTag

WRITERS, BATCHES, KEYS = 8, 15, 5


def test_concurrent_metric_batches_lose_nothing_and_keep_the_newest(live_server, default_experiment):
    base = f"{live_server.url}/api/2.0/mlflow"
    run = requests.post(f"{base}/runs/create", json={"experiment_id": "0", "start_time": 1}, timeout=30).json()
    run_id = run["run"]["info"]["run_id"]

    def writer(number: int) -> list[int]:
        rng = random.Random(number)
        statuses = []
        with requests.Session() as session:
            for batch in range(BATCHES):
                step = rng.randrange(1000)
                metrics = [{"key": f"k{k}", "value": number * 1000 + batch, "timestamp": 5, "step": step}
                           for k in range(KEYS)]
                body = {"run_id": run_id, "metrics": metrics}
                if batch % 5 == 4:  # some batches also carry a param and a tag
                    body["params"] = [{"key": f"p{number}-{batch}", "value": "v"}]
                if batch % 5 == 3:  # and some rename the run: the transactional path, side by side
                    body["tags"] = [{"key": "mlflow.runName", "value": f"name-{number}"}]
                statuses.append(session.post(f"{base}/runs/log-batch", json=body, timeout=60).status_code)
        return statuses

    with ThreadPoolExecutor(WRITERS) as pool:
        statuses = [status for result in pool.map(writer, range(WRITERS)) for status in result]

    assert statuses == [200] * (WRITERS * BATCHES)
    assert Metric.objects.filter(run_id=run_id).count() == WRITERS * BATCHES * KEYS  # distinct values: no collapse
    for key in (f"k{k}" for k in range(KEYS)):
        newest = max(Metric.objects.filter(run_id=run_id, key=key).values_list("step", "timestamp", "value"))
        latest = LatestMetric.objects.get(run_id=run_id, key=key)
        assert (latest.step, latest.timestamp, latest.value) == newest


def test_a_metric_batch_to_a_missing_run_is_404_and_writes_nothing(live_server, default_experiment):
    response = requests.post(f"{live_server.url}/api/2.0/mlflow/runs/log-batch", timeout=30, json={
        "run_id": "0" * 32, "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 0}]})
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert not Metric.objects.filter(run_id="0" * 32).exists()


def test_a_run_whose_tags_fail_is_not_created(live_server, default_experiment):
    # the run and its tags are one statement: a tag PostgreSQL refuses (NUL in text) leaves no run behind
    response = requests.post(f"{live_server.url}/api/2.0/mlflow/runs/create", timeout=30, json={
        "experiment_id": "0", "run_name": "half", "tags": [{"key": "k", "value": "a\u0000b"}]})
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "BAD_REQUEST"  # what the database refuses (mlflow_sh.errors)
    assert not Run.objects.filter(name="half").exists()


def test_concurrent_writers_of_one_param_agree_on_its_value(live_server, default_experiment):
    # each round, eight writers log the same param key, half with one value, half with another: the first stored
    # wins, the writers of the same value succeed (a no-op), the others get MLflow's 400 and write nothing at all
    base = f"{live_server.url}/api/2.0/mlflow"
    run_id = requests.post(f"{base}/runs/create", json={"experiment_id": "0"}, timeout=30).json()["run"]["info"]["run_id"]
    rounds = 6

    def writer(number: int) -> dict[int, requests.Response]:
        answers = {}
        with requests.Session() as session:
            for round_ in range(rounds):
                answers[round_] = session.post(f"{base}/runs/log-batch", timeout=60, json={
                    "run_id": run_id,
                    "params": [{"key": f"shared{round_}", "value": str(number % 2)}],
                    "metrics": [{"key": f"w{number}", "value": round_, "timestamp": 1, "step": round_}],
                    "tags": [{"key": f"t{number}-{round_}", "value": "x"}],
                })
        return answers

    with ThreadPoolExecutor(WRITERS) as pool:
        answers = list(pool.map(writer, range(WRITERS)))

    for round_ in range(rounds):
        stored = Param.objects.get(run_id=run_id, key=f"shared{round_}").value
        for number, writer_answers in enumerate(answers):
            response, wrote = writer_answers[round_], str(number % 2) == stored
            assert response.status_code == (200 if wrote else 400), response.text
            if not wrote:
                assert response.json()["message"].startswith(
                    f"Changing param values is not allowed. Param with key='shared{round_}' was already logged with "
                    f"value='{stored}'")
            assert Metric.objects.filter(run_id=run_id, key=f"w{number}", step=round_).exists() == wrote
            assert RunTag.objects.filter(run_id=run_id, key=f"t{number}-{round_}").exists() == wrote
