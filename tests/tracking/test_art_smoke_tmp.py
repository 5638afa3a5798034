import mlflow, pytest
pytestmark = pytest.mark.django_db(transaction=True)

def test_smoke(mlflow_client, any_store, tmp_path):
    mlflow.set_experiment("art")
    f = tmp_path / "hello.txt"; f.write_text("hello world")
    (tmp_path / "tree" / "sub").mkdir(parents=True); (tmp_path / "tree" / "sub" / "a.txt").write_text("a"); (tmp_path / "tree" / "b.txt").write_text("b")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(f), "docs")
        mlflow.log_artifacts(str(tmp_path / "tree"), "tree")
        mlflow.log_text("some text", "notes/t.txt")
        mlflow.log_dict({"a": 1}, "d.json")
    rid = run.info.run_id
    paths = sorted(a.path for a in mlflow_client.list_artifacts(rid))
    assert paths == ["d.json", "docs", "notes", "tree"], paths
    assert [a.path for a in mlflow_client.list_artifacts(rid, "tree")] == ["tree/b.txt", "tree/sub"]
    out = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="tree", dst_path=str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "tree" / "sub" / "a.txt").read_text() == "a"
    assert mlflow.artifacts.load_text(f"runs:/{rid}/notes/t.txt") == "some text"
