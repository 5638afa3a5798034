"""The real MLflow web UI, in headless Chromium, against our server: data seeded by the real MLflow client, then the
pages a person opens — experiments, runs, a run with its charts and artifacts, run comparison, registered models,
a model version — each waited for until its content shows, screenshotted, and checked for failing requests and
uncaught errors.

Three walks over the same data (seeded once for the module):
- the global view, straight to the server, in open mode;
- the same behind nginx with the deployment guide's ingress (`/mlflow/` prefix, `X-Script-Name`);
- a Reporter (read-only) of one project in its project view `/mlflow/<project>/tracking/`, in SharingHub mode,
  authenticated by the SharingHub session cookie the browser carries.
"""

import contextlib
import json
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from tests.ui.conftest import Expected, ServerProcess

pytestmark = pytest.mark.browser

WINE, BEER = "team/wine", "other/beer"
EXPERIMENT, OTHER_EXPERIMENT = "wine (42)", "beer (7)"
MODEL, OTHER_MODEL = "wine-model (42)", "beer-model (7)"
RUN_NAMES = ["wine-run-0", "wine-run-1", "wine-run-2"]
ARTIFACT = "summary.txt"
METRICS = ["rmse", "r2"]


def artifact_text(run_name: str) -> str:
    return f"wine quality summary of {run_name}: ElasticNet"


# Requests the UI makes that may fail on this server, each with the reason. Anything else failing fails the walk.
EXPECTED_FAILURES: list[Expected] = [
    # The GenAI assistant (spec Appendix A, "misc" row of §2.2): out of scope, so 404 as the spec says for such
    # routes (`mlflow server` has it and answers 200); the UI then shows its welcome panel only, nothing breaks.
    Expected("GET", r"ajax-api/3\.0/mlflow/assistant/(config|providers)", 404, "GenAI assistant: out of scope"),
    # MLflow's basic-auth app (`--app-name basic-auth`) serves this; without it `mlflow server` answers 404 too,
    # which is how the UI learns that MLflow's own user management is off (permissions are SharingHub's here).
    Expected("GET", r"ajax-api/2\.0/mlflow/users/current", 404, "no MLflow basic-auth app"),
]


@dataclass
class Seeded:
    experiment_id: str
    run_ids: list[str]  # in RUN_NAMES order
    model_versions: list[str]
    logged_model_ids: list[str]  # the sklearn models of the first two runs (MLflow 3 logged models)


@dataclass
class Servers:
    open: ServerProcess  # open mode: no permission checks
    sharinghub: ServerProcess  # SharingHub mode, against the double
    reporter_cookie: str  # the SharingHub session cookie of a Reporter of team/wine


@pytest.fixture(scope="module")
def servers(server_factory, sharinghub_server):
    """The SharingHub double knows two projects, a Developer of each and a Reporter of team/wine; one server in
    SharingHub mode and one in open mode share the module's database."""
    from tests.doubles.sharinghub import SharingHubState

    double = sharinghub_server
    double.state = SharingHubState()
    double.add_project(WINE, 42)
    double.add_project(BEER, 7)
    double.token(user="wine-developer", project=WINE, level=3)
    double.token(user="beer-developer", project=BEER, level=3)
    reporter = double.token(user="wine-reporter", project=WINE, level=2)
    sharinghub = server_factory("sharinghub", SHARINGHUB_URL=double.url)
    open_ = server_factory("open")
    return Servers(open_, sharinghub, double.cookie_for(reporter))


@pytest.fixture(scope="module")
def seeded(servers) -> Seeded:
    """What a Developer logs with the real MLflow client in the project view; a second project has its own."""
    import mlflow
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.linear_model import ElasticNet

    base = servers.sharinghub.url
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        patch.setenv("MLFLOW_TRACKING_TOKEN", "wine-developer")
        url = f"{base}/{WINE}/tracking/"
        mlflow.set_tracking_uri(url)
        try:
            client = mlflow.MlflowClient(url)
            experiment_id = client.create_experiment(EXPERIMENT, tags={"team": "wine"})
            features = np.random.default_rng(0).normal(size=(40, 3))
            target = features @ np.array([0.5, -1.0, 2.0])
            run_ids, versions, logged_models = [], [], []
            for index, name in enumerate(RUN_NAMES):
                with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
                    alpha = 0.1 * (index + 1)
                    mlflow.log_params({"alpha": alpha, "l1_ratio": 0.5, "solver": "cd"})
                    for step in range(12):  # a curve per metric, for the charts
                        mlflow.log_metrics({"rmse": 1.0 / (step + 1) + alpha, "r2": 1 - 0.5 / (step + 1) - alpha},
                                           step=step)
                    mlflow.set_tags({"stage": "ui-test", "dataset": "wine-quality"})
                    # In every run: the compare view then shows it side by side. (With it in one run only, MLflow
                    # 3.17's compare view may throw while it intersects the runs' artifact lists, depending on which
                    # listing answers first: a UI bug, the same with `mlflow server`.)
                    mlflow.log_text(artifact_text(name) + "\n", ARTIFACT)
                    if index < 2:  # two versions of one registered model
                        model = ElasticNet(alpha=alpha).fit(features, target)
                        info = mlflow.sklearn.log_model(
                            model, name="model", registered_model_name=MODEL,
                            signature=infer_signature(features, model.predict(features)),
                            pip_requirements=["scikit-learn"])  # no requirement inference: it is slow
                        versions.append(str(info.registered_model_version))
                        logged_models.append(info.model_id)
                    run_ids.append(run.info.run_id)
            client.set_registered_model_alias(MODEL, "champion", versions[-1])
        finally:
            mlflow.set_tracking_uri(None)
        patch.setenv("MLFLOW_TRACKING_TOKEN", "beer-developer")
        other = mlflow.MlflowClient(f"{base}/{BEER}/tracking/")
        other.create_experiment(OTHER_EXPERIMENT)
        other.create_registered_model(OTHER_MODEL)
    return Seeded(experiment_id, run_ids, versions, logged_models)


@pytest.fixture(scope="module")
def ingress_factory(tmp_path_factory):
    """nginx with the deployment guide's ingress (/mlflow/ prefix, X-Script-Name) in front of a server."""
    from tests.nginx import run_ingress

    with contextlib.ExitStack() as stack:
        def start(server: ServerProcess, label: str):
            return stack.enter_context(run_ingress(server.url, tmp_path_factory.mktemp(f"nginx-{label}")))

        yield start


def model_route(name: str) -> str:
    return f"#/models/{quote(name, safe='')}"


def first_visit(walk) -> None:
    """What a person does on a first visit: picks the "Model training" side of the UI (this server is for
    training runs and registered models) and closes the GenAI assistant panel that opens by itself."""
    page = walk.page
    page.get_by_text("Model training", exact=True).first.click()
    close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close.count():
        close.first.click()


def walk_the_ui(walk, seeded: Seeded, *, sees_other_project: bool) -> None:
    """The pages a person opens, in order; every step waits for real content, then takes a screenshot."""
    experiment = seeded.experiment_id
    run = seeded.run_ids[0]
    page = walk.page

    walk.open("#/experiments", expect=[EXPERIMENT], step="experiments", before_shot=first_visit)
    other_visible = page.get_by_text(OTHER_EXPERIMENT, exact=True).count() > 0
    assert other_visible == sees_other_project, f"{OTHER_EXPERIMENT!r} listed: {other_visible}"

    walk.open(f"#/experiments/{experiment}/runs", expect=RUN_NAMES, step="runs-table")

    walk.open(f"#/experiments/{experiment}/runs/{run}", expect=[RUN_NAMES[0], "alpha", "rmse"], step="run-overview")

    walk.open(f"#/experiments/{experiment}/runs/{run}/model-metrics", expect=METRICS, step="run-metric-charts",
              before_shot=lambda w: w.page.locator(".js-plotly-plot").first.wait_for(state="visible"))

    # The MLflow 3 logged model the run produced: its page, with the run's parameters copied onto it.
    walk.open(f"#/experiments/{experiment}/models/{seeded.logged_model_ids[0]}",
              expect=[seeded.logged_model_ids[0], "l1_ratio", RUN_NAMES[0]], step="logged-model")

    walk.open(f"#/experiments/{experiment}/runs/{run}/artifacts", expect=[ARTIFACT], step="run-artifacts")
    page.get_by_text(ARTIFACT, exact=True).first.click()
    walk.wait_for([artifact_text(RUN_NAMES[0])], step="artifact-preview")

    runs = quote(json.dumps(seeded.run_ids))
    walk.open(f"#/compare-runs?runs={runs}&experiments={quote(json.dumps([experiment]))}",
              expect=[*RUN_NAMES, "alpha", "rmse", ARTIFACT], step="compare-runs")
    # Its lower half: the artifact all runs have, previewed side by side. MLflow 3.17 lays the file list of this
    # section out under its own sidebar, where a pointer cannot reach it, so the click is dispatched to the entry.
    page.get_by_text(ARTIFACT, exact=True).first.dispatch_event("click")
    texts = [artifact_text(name) for name in RUN_NAMES]
    # The app scrolls inside its own frame (a full-page screenshot holds what is in view only): bring them in view.
    walk.wait_for(texts, step="compare-runs-artifacts",
                  before_shot=lambda w: w.page.get_by_text(texts[0]).first.scroll_into_view_if_needed())

    walk.open("#/models", expect=[MODEL], step="registered-models")
    other_visible = page.get_by_text(OTHER_MODEL, exact=True).count() > 0
    assert other_visible == sees_other_project, f"{OTHER_MODEL!r} listed: {other_visible}"

    walk.open(model_route(MODEL), expect=[MODEL, "Version 1", "Version 2", "champion"], step="registered-model")

    latest = seeded.model_versions[-1]
    walk.open(f"{model_route(MODEL)}/versions/{latest}", expect=[f"Version {latest}", "champion", RUN_NAMES[1]],
              step="model-version")


def test_global_view(servers, seeded, walk_factory):
    """Open mode, straight to the server: every project's experiments and models are listed."""
    walk = walk_factory(f"{servers.open.url}/", "global")
    walk_the_ui(walk, seeded, sees_other_project=True)
    walk.assert_clean(EXPECTED_FAILURES)


def test_a_logged_model_shows_its_metrics(servers, seeded, walk_factory):
    """The logged model page lists the metrics linked to the model, as with `mlflow server` ("Metrics (2)")."""
    walk = walk_factory(f"{servers.open.url}/", "logged-model-metrics")
    walk.open(f"#/experiments/{seeded.experiment_id}/models/{seeded.logged_model_ids[0]}",
              expect=[seeded.logged_model_ids[0]], step="logged-model")
    walk.page.get_by_text(f"Metrics ({len(METRICS)})", exact=True).first.wait_for(state="visible", timeout=5_000)


def test_global_view_behind_the_ingress(servers, seeded, walk_factory, ingress_factory):
    """The same behind nginx under /mlflow/: every asset and API call must carry the prefix."""
    ingress = ingress_factory(servers.open, "open")
    walk = walk_factory(f"{ingress.url}/", "ingress")
    walk_the_ui(walk, seeded, sees_other_project=True)
    walk.assert_clean(EXPECTED_FAILURES)
    outside = [seen.url for seen in walk.responses if not seen.url.startswith(f"{ingress.url}/")]
    assert not outside, f"requests that escaped the /mlflow/ prefix: {outside}"
    assert "/mlflow/ajax-api/2.0/mlflow/runs/search" in ingress.access_log()


def test_reporter_in_the_project_view(servers, seeded, walk_factory, ingress_factory):
    """SharingHub mode behind the ingress: a Reporter of team/wine, authenticated by SharingHub's session cookie,
    in the project view sees that project only, and cannot create an experiment there."""
    ingress = ingress_factory(servers.sharinghub, "sharinghub")
    cookie = {"name": "sharinghub-session", "value": servers.reporter_cookie, "domain": "127.0.0.1", "path": "/"}
    walk = walk_factory(f"{ingress.url}/{WINE}/tracking/", "reporter", cookies=[cookie])
    walk_the_ui(walk, seeded, sees_other_project=False)

    # The injected bar names the project the view is about.
    assert WINE in walk.page.locator("#mlflow-sh-bar").inner_text()

    # Read-only: the UI's own "Create" dialog is refused by the server (403), and nothing is created.
    page = walk.page
    walk.open("#/experiments", expect=[EXPERIMENT], step="experiments-again")
    page.locator('[data-testid="create-experiment-button"]').click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox").first.fill("wine-by-reporter (42)")
    with page.expect_response(lambda r: r.url.endswith("experiments/create")) as created:
        dialog.get_by_role("button", name="Create").click()
    assert created.value.status == 403, created.value.status
    walk.wait_for(["Permission denied"], step="create-refused")
    page.reload()  # the list as the server has it now
    walk.wait_for([EXPERIMENT], step="experiments-unchanged")
    assert page.get_by_text("wine-by-reporter (42)").count() == 0

    walk.assert_clean([
        *EXPECTED_FAILURES,
        # The dialog checks that the name is free before it creates: "no such experiment" is the answer it wants.
        Expected("GET", r"ajax-api/2\.0/mlflow/experiments/get-by-name", 404, "the create dialog's name check"),
        Expected("POST", r"ajax-api/2\.0/mlflow/experiments/create", 403, "the Reporter may not create: refused"),
    ])
