import mlflow, pytest
import numpy as np
from sklearn.linear_model import LinearRegression
pytestmark = pytest.mark.django_db(transaction=True)

def test_registry_smoke(mlflow_client):
    mlflow.set_experiment("reg")
    X = np.array([[1.0], [2.0], [3.0]]); y = np.array([2.0, 4.0, 6.0])
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(LinearRegression().fit(X, y), name="model", registered_model_name="wf-model", input_example=X[:1])
    c = mlflow_client
    c.set_registered_model_alias("wf-model", "champion", "1")
    m = mlflow.pyfunc.load_model("models:/wf-model@champion")
    assert m.predict(X)[0] == pytest.approx(2.0)
    assert mlflow.pyfunc.load_model("models:/wf-model/1").predict(X)[1] == pytest.approx(4.0)
    assert mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(X)[2] == pytest.approx(6.0)
    rms = c.search_registered_models()
    assert [r.name for r in rms] == ["wf-model"]
    mvs = c.search_model_versions("name='wf-model'")
    assert [v.version for v in mvs] == ["1"]
    c.rename_registered_model("wf-model", "wf-model-2")
    assert c.get_model_version("wf-model-2", "1").run_id == run.info.run_id
    c.transition_model_version_stage("wf-model-2", "1", "Staging")
    assert [v.version for v in c.get_latest_versions("wf-model-2", ["Staging"])] == ["1"]
    c.delete_model_version("wf-model-2", "1")
    c.delete_registered_model("wf-model-2")
