"""The artifact proxy of `mlflow server --serve-artifacts`, on a local folder and on S3 (moto over HTTP).

The real MLflow 3.x client end to end; the raw routes (proxy, run artifacts, the UI's routes, logged-model
files, server-info); every path-escape form as it really arrives on the wire (raw socket, no client-side
normalisation); store failures; interrupted uploads; multipart uploads and presigned downloads straight to S3.
The big transfers are in test_artifacts_large.py.

What the store really holds is always read around the app (the folder on disk, or boto3 on the bucket).
"""

import hashlib
import http.client
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
from google.protobuf import json_format
from mlflow.protos import mlflow_artifacts_pb2, service_pb2

from tests.conftest import ARTIFACT_BUCKET
from tracking.artifacts import UPLOAD_PREFIX, S3ArtifactStore

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
MPU = "/api/2.0/mlflow-artifacts/mpu"
PRESIGNED = "/api/2.0/mlflow-artifacts/presigned"
MiB = 1024 * 1024
SECRET = b"TOP SECRET: outside the artifact root"
MULTIPART_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"


# --- the store, seen without the app ---------------------------------------------------------------


class StoreView:
    """The artifact store as it really is: the folder on disk, or the keys under prefix/ in the bucket."""

    def __init__(self, where):
        self.local = isinstance(where, Path)
        self.root: Path | None = where if self.local else None
        self.s3 = None if self.local else where

    @property
    def kind(self) -> str:
        return "local" if self.local else "s3"

    def names(self) -> set[str]:
        """Every file under the root (hidden ones too), relative to the root."""
        if self.local:
            found = set()
            for folder, _, files in os.walk(self.root):
                found.update(Path(folder, name).relative_to(self.root).as_posix() for name in files)
            return found
        found = set()
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=ARTIFACT_BUCKET, Prefix="prefix/"):
            found.update(item["Key"][len("prefix/"):] for item in page.get("Contents", []))
        return found

    def read(self, path: str) -> bytes | None:
        if self.local:
            target = self.root / path
            return target.read_bytes() if target.is_file() else None
        try:
            return self.s3.get_object(Bucket=ARTIFACT_BUCKET, Key=f"prefix/{path}")["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def write(self, path: str, data: bytes) -> None:
        if self.local:
            (self.root / path).parent.mkdir(parents=True, exist_ok=True)
            (self.root / path).write_bytes(data)
        else:
            self.s3.put_object(Bucket=ARTIFACT_BUCKET, Key=f"prefix/{path}", Body=data)

    def leftovers(self) -> list[str]:
        """Half-done uploads: .upload-* files on disk, or multipart uploads S3 still holds open."""
        if self.local:
            return sorted(name for name in self.names() if Path(name).name.startswith(UPLOAD_PREFIX))
        return sorted(upload["Key"] for upload in self.s3.list_multipart_uploads(Bucket=ARTIFACT_BUCKET).get("Uploads", []))

    def plant_outside(self) -> None:
        """A secret beside the root: tmp/outside/secret.txt next to tmp/mlartifacts, or outside/secret.txt beside prefix/."""
        if self.local:
            (self.root.parent / "outside").mkdir(exist_ok=True)
            (self.root.parent / "outside" / "secret.txt").write_bytes(SECRET)
        else:
            self.s3.put_object(Bucket=ARTIFACT_BUCKET, Key="outside/secret.txt", Body=SECRET)

    def everything(self) -> dict[str, str]:
        """A fingerprint of all there is, inside the root and around it: proves a refused request changed nothing."""
        if self.local:
            top, found = self.root.parent, {}
            for folder, dirs, files in os.walk(top):
                for name in dirs + files:
                    path = Path(folder, name)
                    if path.is_symlink():
                        found[path.relative_to(top).as_posix()] = "-> " + os.readlink(path)
                    elif path.is_file():
                        found[path.relative_to(top).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
            return found
        found = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=ARTIFACT_BUCKET):
            found.update({item["Key"]: item["ETag"] for item in page.get("Contents", [])})
        return found


@pytest.fixture(autouse=True)
def fresh_server_info():
    """The 3.x client caches server-info per host for 60 s, and the live server keeps its URL across tests."""
    from mlflow.utils import server_info

    with server_info._SERVER_INFO_CACHE_LOCK:
        server_info._SERVER_INFO_CACHE.clear()
    yield
    with server_info._SERVER_INFO_CACHE_LOCK:
        server_info._SERVER_INFO_CACHE.clear()


@pytest.fixture
def store(any_store):
    return StoreView(any_store)


@pytest.fixture
def s3(s3_store):
    return StoreView(s3_store)


@pytest.fixture
def local(local_store):
    return StoreView(local_store)


# --- helpers ----------------------------------------------------------------------------------------


def content(response) -> bytes:
    """The body of a Django test-client response, streamed or not (the client closes a stream once it is read)."""
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def check_error(response, status: int, error_code: str, message: str | None = None) -> dict:
    assert response.status_code == status, content(response)
    body = json.loads(content(response))
    assert body["error_code"] == error_code, body
    if message is not None:
        assert body["message"] == message, body
    return body


def check_proto(message_class, body: dict) -> None:
    """A wrong field name or type fails here, as it would in the real client."""
    json_format.ParseDict(body, message_class(), ignore_unknown_fields=False)


def put(api, path: str, data: bytes, content_type: str = "application/octet-stream"):
    return api.request("PUT", f"{PROXY}/{quote(path)}", data, content_type=content_type)


def listing(api, path: str | None) -> dict:
    response = api.request("GET", PROXY, {} if path is None else {"path": path})
    assert response.status_code == 200, response.content
    body = response.json()
    check_proto(mlflow_artifacts_pb2.ListArtifacts.Response, body)
    return body


def assert_attachment(response, name: str, content_type: str) -> None:
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] in {f'attachment; filename="{name}"', f"attachment; filename={name}"}
    assert response["X-Content-Type-Options"] == "nosniff"


@dataclass
class RawResponse:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def raw_request(base_url: str, method: str, target: str | bytes, body: bytes = b"", headers: dict | None = None,
                timeout: float = 30) -> RawResponse:
    """One HTTP/1.1 request written byte for byte on a socket: the target reaches the server exactly as given."""
    server = urlsplit(base_url)
    target = target if isinstance(target, bytes) else target.encode("utf-8")
    lines = [method.encode() + b" " + target + b" HTTP/1.1", f"Host: {server.netloc}".encode(), b"Connection: close",
             f"Content-Length: {len(body)}".encode()]
    lines += [f"{key}: {value}".encode() for key, value in (headers or {}).items()]
    with socket.create_connection((server.hostname, server.port), timeout=timeout) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())


@dataclass
class LiveRun:
    experiment_id: str
    run_id: str
    model_id: str

    @property
    def run_root(self) -> str:
        return f"{self.experiment_id}/{self.run_id}/artifacts"

    @property
    def model_root(self) -> str:
        return f"{self.experiment_id}/models/{self.model_id}/artifacts"


def live_run(base_url: str) -> LiveRun:
    """An experiment, a run and a logged model, created over HTTP (so the live server's threads see them)."""
    api = f"{base_url}/api/2.0/mlflow"
    experiment_id = requests.post(f"{api}/experiments/create", json={"name": f"art-{uuid.uuid4().hex}"}).json()["experiment_id"]
    run_id = requests.post(f"{api}/runs/create", json={"experiment_id": experiment_id}).json()["run"]["info"]["run_id"]
    model_id = requests.post(f"{api}/logged-models", json={"experiment_id": experiment_id, "name": "m"}).json()["model"]["info"]["model_id"]
    return LiveRun(experiment_id, run_id, model_id)


def spy_store(monkeypatch, *names: str) -> list[tuple]:
    """Calls the server makes on S3ArtifactStore (the live server runs in this process): (method, path, extra)."""
    calls: list[tuple] = []
    for name in names:
        original = getattr(S3ArtifactStore, name)

        def wrapper(self, path, *args, _original=original, _name=name, **kwargs):
            calls.append((_name, path, *args))
            return _original(self, path, *args, **kwargs)

        monkeypatch.setattr(S3ArtifactStore, name, wrapper)
    return calls


def random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def tree_contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# =====================================================================================================
# 1. The MLflow 3.x client, on both stores
# =====================================================================================================


@pytest.mark.django_db(transaction=True)
def test_client_logs_lists_downloads_and_loads(mlflow_client, store, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    import numpy as np
    from PIL import Image

    hello = tmp_path / "src" / "hello.txt"
    hello.parent.mkdir()
    hello.write_text("hello world")
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "b.txt").write_text("b")
    (tree / "sub" / "a.txt").write_text("a")
    weights = random_file(tree / "sub" / "deeper" / "w.bin", 300_000)
    (tree / "sub" / "ünï cödé file.txt").write_text("unicode name, spaces")
    image = (np.arange(24 * 32 * 3) % 256).astype(np.uint8).reshape(24, 32, 3)
    figure, axes = plt.subplots()
    axes.plot([0, 1, 2], [2, 0, 1])

    experiment = mlflow.set_experiment("artifacts-client")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(hello), "docs")
        mlflow.log_artifacts(str(tree), "tree")
        mlflow.log_text("some text", "notes/t.txt")
        mlflow.log_dict({"a": 1, "b": [1, 2]}, "d.json")
        mlflow.log_figure(figure, "plots/fig.png")
        mlflow.log_image(image, "images/img.png")
    plt.close(figure)
    run_id, experiment_id = run.info.run_id, experiment.experiment_id

    artifact_uri = mlflow_client.get_run(run_id).info.artifact_uri
    assert artifact_uri == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"

    # The bytes landed where `mlflow server --serve-artifacts` puts them: <exp>/<run>/artifacts/<path>.
    root = f"{experiment_id}/{run_id}/artifacts"
    assert store.names() == {f"{root}/{name}" for name in (
        "docs/hello.txt", "tree/b.txt", "tree/sub/a.txt", "tree/sub/deeper/w.bin", "tree/sub/ünï cödé file.txt",
        "notes/t.txt", "d.json", "plots/fig.png", "images/img.png")}
    assert store.read(f"{root}/docs/hello.txt") == b"hello world"
    assert store.read(f"{root}/tree/sub/deeper/w.bin") == weights
    assert json.loads(store.read(f"{root}/d.json")) == {"a": 1, "b": [1, 2]}
    assert store.read(f"{root}/plots/fig.png").startswith(b"\x89PNG\r\n\x1a\n")
    assert store.leftovers() == []

    top = mlflow_client.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [
        ("d.json", False), ("docs", True), ("images", True), ("notes", True), ("plots", True), ("tree", True)]
    assert {f.path: f.file_size for f in top if not f.is_dir} == {"d.json": len(store.read(f"{root}/d.json"))}
    assert [(f.path, f.is_dir, f.file_size) for f in mlflow_client.list_artifacts(run_id, "tree")] == [
        ("tree/b.txt", False, 1), ("tree/sub", True, None)]
    assert [(f.path, f.is_dir, f.file_size) for f in mlflow_client.list_artifacts(run_id, "tree/sub")] == [
        ("tree/sub/a.txt", False, 1), ("tree/sub/deeper", True, None), ("tree/sub/ünï cödé file.txt", False, 20)]
    assert mlflow_client.list_artifacts(run_id, "tree/b.txt") == []
    assert mlflow_client.list_artifacts(run_id, "missing") == []

    # Downloads: through a runs:/ URI, through the artifact URI itself, and the whole run.
    by_runs_uri = mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{run_id}/tree", dst_path=str(tmp_path / "dl1"))
    assert tree_contents(Path(by_runs_uri)) == tree_contents(tree)
    by_artifact_uri = mlflow.artifacts.download_artifacts(artifact_uri=f"{artifact_uri}/docs/hello.txt",
                                                          dst_path=str(tmp_path / "dl2"))
    assert Path(by_artifact_uri).read_text() == "hello world"
    whole = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "dl3")))
    assert set(tree_contents(whole)) == {name.split("/artifacts/", 1)[1] for name in store.names()}
    assert tree_contents(whole / "tree") == tree_contents(tree)

    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/t.txt") == "some text"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/d.json") == {"a": 1, "b": [1, 2]}
    assert mlflow.artifacts.load_text(f"{artifact_uri}/docs/hello.txt") == "hello world"
    loaded = np.asarray(Image.open(mlflow.artifacts.download_artifacts(
        artifact_uri=f"runs:/{run_id}/images/img.png", dst_path=str(tmp_path / "dl4"))))
    assert loaded.shape == image.shape and (loaded == image).all()


@pytest.mark.django_db(transaction=True)
def test_client_delete_and_overwrite(mlflow_client, store, tmp_path):
    """MlflowClient-level deletes go through DELETE (recursive); a second log_artifact replaces the file."""
    import mlflow

    experiment = mlflow.set_experiment("artifacts-delete")
    source = tmp_path / "f.txt"
    source.write_text("one")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(source), "a")
        source.write_text("two")
        mlflow.log_artifact(str(source), "a")
        mlflow.log_text("x", "a/b/c.txt")
        mlflow.log_text("y", "ab.txt")
    root = f"{experiment.experiment_id}/{run.info.run_id}/artifacts"
    assert store.read(f"{root}/a/f.txt") == b"two"
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(mlflow_client.get_run(run.info.run_id).info.artifact_uri)
    repo.delete_artifacts("a")
    assert store.names() == {f"{root}/ab.txt"}
    assert [f.path for f in mlflow_client.list_artifacts(run.info.run_id)] == ["ab.txt"]


# =====================================================================================================
# 2. The raw routes, on both stores (in process: the Django test client)
# =====================================================================================================


@pytest.mark.parametrize("name,content_type,data", [
    ("hello.txt", "text/plain", b"hello world"),
    ("data.json", "application/json", b'{"a": 1}'),
    ("img.png", "image/png", b"\x89PNG\r\n\x1a\nnot-really"),
    ("weights.bin", "application/octet-stream", bytes(range(256)) * 40),
    ("no-extension", "application/octet-stream", b"\x00\x01\x02"),
], ids=["text", "json", "png", "binary", "no-extension"])
def test_put_then_get_round_trip(api, store, name, content_type, data):
    path = f"1/r1/artifacts/docs/{name}"
    response = put(api, path, data, content_type)
    assert response.status_code == 200, response.content
    assert response.json() == {}
    assert store.read(path) == data
    assert store.leftovers() == []

    response = api.request("GET", f"{PROXY}/{path}")
    assert response.status_code == 200
    assert content(response) == data
    assert_attachment(response, name, content_type)
    assert response["Content-Length"] == str(len(data))


def test_put_replaces_and_accepts_empty_and_unicode(api, store):
    assert put(api, "1/r/artifacts/x.txt", b"first").status_code == 200
    assert put(api, "1/r/artifacts/x.txt", b"second, longer").status_code == 200
    assert store.read("1/r/artifacts/x.txt") == b"second, longer"
    assert put(api, "1/r/artifacts/empty.txt", b"").status_code == 200
    assert store.read("1/r/artifacts/empty.txt") == b""
    assert content(api.request("GET", f"{PROXY}/1/r/artifacts/empty.txt")) == b""
    assert put(api, "1/r/artifacts/dïr ü/naïve file+1.txt", b"u").status_code == 200
    assert store.read("1/r/artifacts/dïr ü/naïve file+1.txt") == b"u"
    assert content(api.request("GET", f"{PROXY}/{quote('1/r/artifacts/dïr ü/naïve file+1.txt')}")) == b"u"
    assert listing(api, "1/r/artifacts/dïr ü") == {"files": [{"path": "naïve file+1.txt", "is_dir": False, "file_size": 1}]}


def test_download_header_of_a_non_ascii_name(api, store):
    """A name outside Latin-1 still yields a parseable attachment header (RFC 6266 filename*), not a MIME word."""
    name = "報告 ü.txt"
    assert put(api, f"1/R/artifacts/{name}", b"x", "text/plain").status_code == 200
    response = api.request("GET", f"{PROXY}/{quote(f'1/R/artifacts/{name}')}")
    assert response.status_code == 200 and content(response) == b"x"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;"), disposition
    assert f"filename*=utf-8''{quote(name)}" in disposition.replace("UTF-8''", "utf-8''"), disposition


def test_s3_listing_and_delete_go_past_one_page(api, s3):
    """ListObjectsV2 answers 1000 keys a page, DeleteObjects takes 1000 keys a call: a bigger folder still works."""
    from concurrent.futures import ThreadPoolExecutor

    names = [f"1/R/artifacts/many/f{i:04d}.txt" for i in range(1003)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: s3.write(name, b"x"), names))
    s3.write("1/R/artifacts/many/sub/g.txt", b"g")
    s3.write("1/R/artifacts/many-not.txt", b"n")

    files = listing(api, "1/R/artifacts/many")["files"]
    assert len(files) == 1004
    assert files[-1] == {"path": "sub", "is_dir": True}
    assert [f["path"] for f in files[:-1]] == [name.rsplit("/", 1)[1] for name in names]
    response = api.request("DELETE", f"{PROXY}/1/R/artifacts/many")
    assert response.status_code == 200, response.content
    assert s3.names() == {"1/R/artifacts/many-not.txt"}


def test_list_gives_basenames_sizes_and_folders(api, store):
    for path, data in [("1/R/artifacts/docs/hello.txt", b"hello world"), ("1/R/artifacts/docs/sub/x.bin", b"12345"),
                       ("1/R/artifacts/top.json", b"{}"), ("2/S/artifacts/other.txt", b"o")]:
        assert put(api, path, data).status_code == 200

    assert listing(api, "1/R/artifacts") == {"files": [
        {"path": "docs", "is_dir": True}, {"path": "top.json", "is_dir": False, "file_size": 2}]}
    assert listing(api, "1/R/artifacts/docs") == {"files": [
        {"path": "hello.txt", "is_dir": False, "file_size": 11}, {"path": "sub", "is_dir": True}]}
    assert listing(api, "1/R/artifacts/docs/sub/") == {"files": [{"path": "x.bin", "is_dir": False, "file_size": 5}]}
    assert listing(api, None) == listing(api, "") == {"files": [{"path": "1", "is_dir": True}, {"path": "2", "is_dir": True}]}
    # A missing path, and a file, list as {} (the client then treats the path as a file).
    assert listing(api, "1/R/artifacts/missing") == {}
    assert listing(api, "1/R/artifacts/docs/hello.txt") == {}
    assert listing(api, "1/R/artifacts/top.json") == {}


def test_download_of_missing_file_is_404(api, store):
    response = api.request("GET", f"{PROXY}/1/R/artifacts/model")
    check_error(response, 404, "RESOURCE_DOES_NOT_EXIST", "No such artifact: '1/R/artifacts/model'")


def test_download_of_a_folder_is_400(api, store):
    """§5.2: GET of a directory answers 400, on S3 as on a folder."""
    assert put(api, "1/R/artifacts/model/MLmodel", b"m").status_code == 200
    check_error(api.request("GET", f"{PROXY}/1/R/artifacts/model"), 400, "INVALID_PARAMETER_VALUE")


def test_delete_file_and_folder(api, store):
    for path in ["1/R/artifacts/d/f.txt", "1/R/artifacts/d/sub/g.txt", "1/R/artifacts/dx.txt", "1/R/artifacts/d2/h.txt"]:
        assert put(api, path, path.encode()).status_code == 200

    response = api.request("DELETE", f"{PROXY}/1/R/artifacts/d")  # a folder: everything under it, recursively
    assert response.status_code == 200 and response.json() == {}
    assert store.names() == {"1/R/artifacts/dx.txt", "1/R/artifacts/d2/h.txt"}  # not dx.txt, which shares the prefix
    assert listing(api, "1/R/artifacts/d") == {}
    check_error(api.request("GET", f"{PROXY}/1/R/artifacts/d/f.txt"), 404, "RESOURCE_DOES_NOT_EXIST")

    response = api.request("DELETE", f"{PROXY}/1/R/artifacts/dx.txt")
    assert response.status_code == 200 and response.json() == {}
    assert store.names() == {"1/R/artifacts/d2/h.txt"}
    check_error(api.request("DELETE", f"{PROXY}/1/R/artifacts/dx.txt"), 404, "RESOURCE_DOES_NOT_EXIST",
                "No such artifact: '1/R/artifacts/dx.txt'")


def test_run_artifacts_list(api, store, experiment_id, run_id):
    root = f"{experiment_id}/{run_id}/artifacts"
    for path, data in [("docs/hello.txt", b"hello world"), ("docs/deep/x.bin", b"xyz"), ("top.txt", b"t")]:
        assert put(api, f"{root}/{path}", data).status_code == 200
    root_uri = f"mlflow-artifacts:/{root}"

    def run_list(**query):
        response = api.request("GET", "/api/2.0/mlflow/artifacts/list", query)
        assert response.status_code == 200, response.content
        check_proto(service_pb2.ListArtifacts.Response, response.json())
        return response.json()

    assert run_list(run_id=run_id) == {"root_uri": root_uri, "files": [
        {"path": "docs", "is_dir": True}, {"path": "top.txt", "is_dir": False, "file_size": 1}]}
    # Paths are relative to the run's root, not to the listed folder.
    assert run_list(run_id=run_id, path="docs") == {"root_uri": root_uri, "files": [
        {"path": "docs/deep", "is_dir": True}, {"path": "docs/hello.txt", "is_dir": False, "file_size": 11}]}
    assert run_list(run_uuid=run_id, path="docs/deep") == {"root_uri": root_uri, "files": [
        {"path": "docs/deep/x.bin", "is_dir": False, "file_size": 3}]}
    assert run_list(run_id=run_id, path="docs/hello.txt") == {"root_uri": root_uri}
    assert run_list(run_id=run_id, path="missing") == {"root_uri": root_uri}
    ajax = api.request("GET", "/ajax-api/2.0/mlflow/artifacts/list", {"run_id": run_id, "path": "docs/deep"})
    assert ajax.json() == run_list(run_id=run_id, path="docs/deep")
    check_error(api.request("GET", "/api/2.0/mlflow/artifacts/list", {"run_id": "0" * 32}), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("key", ["run_id", "run_uuid"])
def test_get_artifact_route(api, store, experiment_id, run_id, key):
    root = f"{experiment_id}/{run_id}/artifacts"
    assert put(api, f"{root}/docs/report.json", b'{"ok": true}').status_code == 200

    response = api.request("GET", "/get-artifact", {key: run_id, "path": "docs/report.json"})
    assert response.status_code == 200
    assert content(response) == b'{"ok": true}'
    assert_attachment(response, "report.json", "application/json")
    check_error(api.request("GET", "/get-artifact", {key: run_id, "path": "docs/nope.json"}), 404, "RESOURCE_DOES_NOT_EXIST")


# (In process, an error answer marks the test's own transaction for rollback: one error per test where more
# queries follow. Production views of artifacts run outside transactions, so this is the test's concern only.)


def test_get_artifact_of_unknown_run_is_404(api, store):
    check_error(api.request("GET", "/get-artifact", {"run_id": "0" * 32, "path": "x.txt"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_get_artifact_without_run_is_400(api, store):
    check_error(api.request("GET", "/get-artifact", {"path": "x.txt"}), 400, "INVALID_PARAMETER_VALUE")


def test_ajax_upload_artifact(api, store, experiment_id, run_id):
    root = f"{experiment_id}/{run_id}/artifacts"
    url = "/ajax-api/2.0/mlflow/upload-artifact"

    response = api.request("POST", f"{url}?run_uuid={run_id}&path=eval/table.json", b'{"rows": []}',
                           content_type="application/json")
    assert response.status_code == 200, response.content
    assert store.read(f"{root}/eval/table.json") == b'{"rows": []}'
    assert content(api.request("GET", "/get-artifact", {"run_id": run_id, "path": "eval/table.json"})) == b'{"rows": []}'

    too_big = b"x" * (10 * MiB + 1)
    response = api.request("POST", f"{url}?run_uuid={run_id}&path=eval/big.bin", too_big, content_type="application/octet-stream")
    check_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert store.read(f"{root}/eval/big.bin") is None
    assert store.names() == {f"{root}/eval/table.json"}
    assert store.leftovers() == []



@pytest.mark.parametrize("query", ["path=x.txt", "run_uuid={}"], ids=["no-run", "no-path"])
def test_ajax_upload_artifact_needs_run_and_path(api, store, run_id, query):
    response = api.request("POST", f"/ajax-api/2.0/mlflow/upload-artifact?{query.format(run_id)}", b"x", content_type="text/plain")
    check_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert store.names() == set()


@pytest.mark.parametrize("upload,download", [(False, False), (True, False), (False, True), (True, True)],
                         ids=["defaults", "upload-on", "download-on", "both-on"])
def test_server_info_flags(api, store, settings, upload, download):
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = upload
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD = download
    for prefix in ("/api/3.0", "/ajax-api/3.0"):
        response = api.request("GET", f"{prefix}/mlflow/server-info")
        assert response.status_code == 200
        info = response.json()
        assert info["artifact_serving_enabled"] is True
        # Straight-to-S3 transfers only when S3 is the store and the server opted in; never on a folder.
        assert info["multipart_uploads_enabled"] is (upload and store.kind == "s3")
        assert info["multipart_downloads_enabled"] is (download and store.kind == "s3")
        assert info["artifacts_presigned_only"] is False


def test_logged_model_artifact_routes(api, store, experiment_id):
    model = api.call("CreateLoggedModel", "POST", "/api/2.0/mlflow/logged-models",
                     {"experiment_id": experiment_id, "name": "m"})["model"]["info"]
    model_id = model["model_id"]
    root = f"{experiment_id}/models/{model_id}/artifacts"
    assert model["artifact_uri"] == f"mlflow-artifacts:/{root}"
    assert put(api, f"{root}/MLmodel", b"flavors: {}\n", "text/plain").status_code == 200
    assert put(api, f"{root}/sub/w.bin", b"\x00" * 7).status_code == 200

    base = f"/api/2.0/mlflow/logged-models/{model_id}/artifacts"
    body = api.call("ListLoggedModelArtifacts", "GET", f"{base}/directories")
    assert body == {"root_uri": f"mlflow-artifacts:/{root}", "files": [
        {"path": "MLmodel", "is_dir": False, "file_size": 12}, {"path": "sub", "is_dir": True}]}
    body = api.call("ListLoggedModelArtifacts", "GET", f"{base}/directories?artifact_directory_path=sub")
    assert body["files"] == [{"path": "sub/w.bin", "is_dir": False, "file_size": 7}]

    files = f"/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"
    response = api.request("GET", files, {"artifact_file_path": "MLmodel"})
    assert response.status_code == 200
    assert content(response) == b"flavors: {}\n"
    assert_attachment(response, "MLmodel", "application/octet-stream")
    check_error(api.request("GET", files, {"artifact_file_path": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_logged_model_file_needs_a_path(api, store, experiment_id):
    model_id = api.call("CreateLoggedModel", "POST", "/api/2.0/mlflow/logged-models",
                        {"experiment_id": experiment_id, "name": "m"})["model"]["info"]["model_id"]
    response = api.request("GET", f"/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files")
    check_error(response, 400, "INVALID_PARAMETER_VALUE")


# =====================================================================================================
# 3. Paths that try to leave the root, as they arrive on the wire
# =====================================================================================================


def _up(n: int, dots: str = "..", sep: str = "/") -> str:
    return sep.join([dots] * n)


# Wire forms; n = how many ".." lead from the route's own root to the folder that holds outside/secret.txt.
ESCAPES = {
    "dotdot": lambda n: f"{_up(n)}/outside/secret.txt",
    "dotdot-alone": lambda n: "..",
    "dotdot-after-name": lambda n: f"a/{_up(n + 1)}/outside/secret.txt",  # a/../../x
    "absolute": None,  # /etc/passwd to read; the secret's own absolute path to write (never /etc/passwd)
    "percent-encoded": lambda n: f"{_up(n, '%2e%2e')}/outside/secret.txt",
    "double-encoded": lambda n: f"{_up(n, '%252e%252e')}/outside/secret.txt",
    "encoded-slash": lambda n: f"{_up(n, sep='%2f')}%2foutside%2fsecret.txt",
    "backslash": lambda n: f"{_up(n, sep=chr(92))}\\outside\\secret.txt",
    "windows-drive": lambda n: "C:\\outside\\secret.txt",
    "encoded-nul": lambda n: "secret.txt%00.png",
    "raw-nul": lambda n: "secret.txt\x00.png",
}

# (id, method, target(wire, run), depth of the route's root below the store root + 1, writes?, a benign path)
ESCAPE_ROUTES = [
    ("proxy-put", "PUT", lambda w, r: f"{PROXY}/{w}", 1, True, lambda r: f"{r.run_root}/dir/new.txt"),
    ("proxy-get", "GET", lambda w, r: f"{PROXY}/{w}", 1, False, lambda r: f"{r.run_root}/dir/inside.txt"),
    ("proxy-delete", "DELETE", lambda w, r: f"{PROXY}/{w}", 1, True, lambda r: f"{r.run_root}/dir/new.txt"),
    ("proxy-list", "GET", lambda w, r: f"{PROXY}?path={w}", 1, False, lambda r: f"{r.run_root}/dir"),
    ("get-artifact", "GET", lambda w, r: f"/get-artifact?run_id={r.run_id}&path={w}", 4, False,
     lambda r: "dir/inside.txt"),
    ("get-artifact-run-uuid", "GET", lambda w, r: f"/get-artifact?run_uuid={r.run_id}&path={w}", 4, False,
     lambda r: "dir/inside.txt"),
    ("run-artifacts-list", "GET", lambda w, r: f"/api/2.0/mlflow/artifacts/list?run_id={r.run_id}&path={w}", 4, False,
     lambda r: "dir"),
    ("ajax-upload", "POST", lambda w, r: f"/ajax-api/2.0/mlflow/upload-artifact?run_uuid={r.run_id}&path={w}", 4, True,
     lambda r: "dir/uploaded.txt"),
    ("model-directories", "GET",
     lambda w, r: f"/api/2.0/mlflow/logged-models/{r.model_id}/artifacts/directories?artifact_directory_path={w}", 5, False,
     lambda r: "dir"),
    ("model-files", "GET",
     lambda w, r: f"/ajax-api/2.0/mlflow/logged-models/{r.model_id}/artifacts/files?artifact_file_path={w}", 5, False,
     lambda r: "dir/inside.txt"),
]
S3_ONLY_ESCAPE_ROUTES = [  # multipart and presigned routes exist only with S3 behind them
    ("mpu-create", "POST", lambda w, r: f"{MPU}/create/{w}", 1, True, lambda r: f"{r.run_root}/dir"),
    ("mpu-abort", "POST", lambda w, r: f"{MPU}/abort/{w}", 1, True, lambda r: f"{r.run_root}/dir"),
    ("presigned", "GET", lambda w, r: f"{PRESIGNED}/{w}", 1, False, lambda r: f"{r.run_root}/dir/inside.txt"),
]


def _escape_wire(case: str, depth: int, writes: bool, store: StoreView) -> str:
    if case != "absolute":
        return ESCAPES[case](depth)
    if not writes:
        return "/etc/passwd"
    return str(store.root.parent / "outside" / "secret.txt") if store.local else "/outside/secret.txt"


def _refused_as_invalid_path(response: RawResponse) -> str | None:
    """None if the request was refused properly, else what went wrong."""
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if response.status == 400 and body.get("error_code") == "INVALID_PARAMETER_VALUE" and body.get("message") == "Invalid path":
            return None
        return f"{response.status} {body}"
    # Not the app's answer: the HTTP stack refused the form before the app saw it, which must be a 4xx.
    return None if 400 <= response.status < 500 else f"{response.status} {response.body[:200]!r}"


def _send(base_url: str, route: str, method: str, target: str, upload_id: str) -> RawResponse:
    body, headers = b"PWNED", {"Content-Type": "application/octet-stream"}
    if route.startswith("mpu-"):
        body = json.dumps({"path": "x.bin", "num_parts": 1, "upload_id": upload_id}).encode()
        headers = {"Content-Type": "application/json"}
    return raw_request(base_url, method, target, body if method in {"PUT", "POST"} else b"", headers)


@pytest.mark.django_db(transaction=True)
def test_escape_routes_serve_a_benign_path(live_server, store, settings):
    """The control of the escape tests: every route they probe answers a normal path, so their 400s mean something."""
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = True
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD = True
    run = live_run(live_server.url)
    store.write(f"{run.run_root}/dir/inside.txt", b"inside")
    store.write(f"{run.model_root}/dir/inside.txt", b"inside")
    failures, upload_id = [], "none"
    for route, method, target, _, _, benign in ESCAPE_ROUTES + ([] if store.local else S3_ONLY_ESCAPE_ROUTES):
        response = _send(live_server.url, route, method, target(benign(run), run), upload_id)
        if not 200 <= response.status < 300:
            failures.append(f"{route} {target(benign(run), run)!r}: {response.status} {response.body[:200]!r}")
        elif route == "mpu-create":
            upload_id = response.json()["upload_id"]
        elif method == "GET" and "inside.txt" in benign(run):
            if not (response.body == b"inside" or b"url" in response.body):
                failures.append(f"{route}: unexpected body {response.body[:200]!r}")
    assert not failures, "\n".join(failures)
    assert store.read(f"{run.run_root}/dir/uploaded.txt") == b"PWNED"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", list(ESCAPES))
def test_path_escapes_are_refused(live_server, store, settings, case):
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = True
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD = True
    run = live_run(live_server.url)
    store.write(f"{run.run_root}/inside.txt", b"inside")
    store.write(f"{run.model_root}/MLmodel", b"inside")
    store.plant_outside()
    before = store.everything()

    failures = []
    routes = ESCAPE_ROUTES + ([] if store.local else S3_ONLY_ESCAPE_ROUTES)
    for route, method, target, depth, writes, _ in routes:
        wire = _escape_wire(case, depth, writes, store)
        response = _send(live_server.url, route, method, target(wire, run), upload_id="u")
        problem = _refused_as_invalid_path(response)
        if problem:
            failures.append(f"{route} {target(wire, run)!r}: {problem}")
        if SECRET in response.body or b"root:x:0:0" in response.body:
            failures.append(f"{route}: the response leaked a file from outside the root")
        if store.everything() != before:
            failures.append(f"{route}: the store changed: {sorted(set(store.everything().items()) ^ set(before.items()))}")
            before = store.everything()
    assert not failures, "\n".join(failures)
    assert store.read(f"{run.run_root}/inside.txt") == b"inside"


@pytest.mark.django_db(transaction=True)
def test_symlinks_leading_outside_are_refused(live_server, local):
    run = live_run(live_server.url)
    local.plant_outside()
    outside = local.root.parent / "outside"
    run_root = local.root / run.run_root
    run_root.mkdir(parents=True)
    (run_root / "link").symlink_to(outside, target_is_directory=True)
    (run_root / "secret-link.txt").symlink_to(outside / "secret.txt")
    before = local.everything()

    attempts = [
        ("PUT", f"{PROXY}/{run.run_root}/link/new.txt"),
        ("PUT", f"{PROXY}/{run.run_root}/link/secret.txt"),
        ("PUT", f"{PROXY}/{run.run_root}/secret-link.txt"),
        ("GET", f"{PROXY}/{run.run_root}/link/secret.txt"),
        ("GET", f"{PROXY}/{run.run_root}/secret-link.txt"),
        ("GET", f"{PROXY}?path={run.run_root}/link"),
        ("DELETE", f"{PROXY}/{run.run_root}/link/secret.txt"),
        ("DELETE", f"{PROXY}/{run.run_root}/link"),
        ("GET", f"/get-artifact?run_id={run.run_id}&path=link/secret.txt"),
        ("GET", f"/get-artifact?run_id={run.run_id}&path=secret-link.txt"),
        ("GET", f"/api/2.0/mlflow/artifacts/list?run_id={run.run_id}&path=link"),
        ("POST", f"/ajax-api/2.0/mlflow/upload-artifact?run_uuid={run.run_id}&path=link/new.txt"),
        ("POST", f"/ajax-api/2.0/mlflow/upload-artifact?run_uuid={run.run_id}&path=secret-link.txt"),
    ]
    failures = []
    for method, target in attempts:
        body = b"PWNED" if method in {"PUT", "POST"} else b""
        response = raw_request(live_server.url, method, target, body, {"Content-Type": "application/octet-stream"})
        if response.status != 400:
            failures.append(f"{method} {target}: {response.status} {response.body[:200]!r}")
        if SECRET in response.body:
            failures.append(f"{method} {target}: leaked the secret")
    assert not failures, "\n".join(failures)
    assert local.everything() == before
    assert (outside / "secret.txt").read_bytes() == SECRET
    assert not (outside / "new.txt").exists()


@pytest.mark.django_db(transaction=True)
def test_symlinks_inside_the_root_are_followed(live_server, local):
    run = live_run(live_server.url)
    local.write(f"{run.run_root}/real/file.txt", b"real")
    (local.root / run.run_root / "alias").symlink_to(local.root / run.run_root / "real", target_is_directory=True)
    response = requests.get(f"{live_server.url}{PROXY}/{run.run_root}/alias/file.txt")
    assert response.status_code == 200 and response.content == b"real"


@pytest.mark.django_db(transaction=True)
def test_recursive_delete_does_not_follow_symlinks(live_server, local):
    run = live_run(live_server.url)
    local.plant_outside()
    outside = local.root.parent / "outside"
    local.write(f"{run.run_root}/keep-me-not.txt", b"x")
    (local.root / run.run_root / "link").symlink_to(outside, target_is_directory=True)
    response = requests.delete(f"{live_server.url}{PROXY}/{run.run_root}")
    assert response.status_code == 200, response.text
    assert not (local.root / run.run_root).exists()
    assert (outside / "secret.txt").read_bytes() == SECRET


# =====================================================================================================
# 4. Store failures and interrupted uploads
# =====================================================================================================


def _s3_storage_at(settings, monkeypatch, *, bucket: str, endpoint: str) -> None:
    from mlflow_sh.env import artifact_storage

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    settings.STORAGES = {**settings.STORAGES, "artifacts": artifact_storage(
        f"s3://{bucket}/prefix", variable="MLFLOW_ARTIFACTS_DESTINATION", endpoint_url=endpoint, region="us-east-1",
        addressing_style="path", verify_tls=True)}
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = True
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD = True


@pytest.fixture
def dead_s3(settings, monkeypatch):
    """S3 at a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _s3_storage_at(settings, monkeypatch, bucket=ARTIFACT_BUCKET, endpoint=f"http://127.0.0.1:{port}")
    return port


@pytest.fixture
def bucketless_s3(s3_endpoint, settings, monkeypatch):
    """A reachable S3 without the configured bucket."""
    _s3_storage_at(settings, monkeypatch, bucket="no-such-bucket-here", endpoint=s3_endpoint)


STORE_OPERATIONS = [  # (id, method, path, body, content type)
    ("download", "GET", f"{PROXY}/1/R/artifacts/a.txt", None, None),
    ("upload", "PUT", f"{PROXY}/1/R/artifacts/a.txt", b"abc", "text/plain"),
    ("upload-multipart-size", "PUT", f"{PROXY}/1/R/artifacts/big.bin", b"\x00" * (9 * MiB), "application/octet-stream"),
    ("list", "GET", f"{PROXY}?path=1/R/artifacts", None, None),
    ("delete", "DELETE", f"{PROXY}/1/R/artifacts/a.txt", None, None),
    ("mpu-create", "POST", f"{MPU}/create/1/R/artifacts", json.dumps({"path": "big.bin", "num_parts": 2}), "application/json"),
    ("presigned", "GET", f"{PRESIGNED}/1/R/artifacts/a.txt", None, None),
]


def _call(api, method, path, body, content_type):
    if method == "GET":
        return api.client.get(path)
    return api.request(method, path, body if body is not None else b"", content_type=content_type or "application/json")


@pytest.mark.parametrize("operation", STORE_OPERATIONS, ids=[op[0] for op in STORE_OPERATIONS])
def test_unreachable_s3_fails_fast_with_503(api, dead_s3, operation):
    _, method, path, body, content_type = operation
    started = time.monotonic()
    response = _call(api, method, path, body, content_type)
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"took {elapsed:.1f}s"
    body = check_error(response, 503, "TEMPORARILY_UNAVAILABLE")
    assert "unreachable" in body["message"] and "Could not connect" in body["message"], body
    assert f"127.0.0.1:{dead_s3}" in body["message"], body


@pytest.mark.parametrize("route", ["/get-artifact?run_id={}&path=a.txt", "/api/2.0/mlflow/artifacts/list?run_id={}"],
                         ids=["get-artifact", "run-artifacts-list"])
def test_unreachable_s3_on_run_routes(api, dead_s3, run_id, route):
    started = time.monotonic()
    response = api.client.get(route.format(run_id))
    assert time.monotonic() - started < 20
    body = check_error(response, 503, "TEMPORARILY_UNAVAILABLE")
    assert "Could not connect" in body["message"], body


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MLFLOW_SH_SLOW_TESTS") != "1", reason="waits up to 45 s: set MLFLOW_SH_SLOW_TESTS=1")
@pytest.mark.django_db(transaction=True)
def test_silent_s3_fails_within_a_bounded_time(live_server, settings, monkeypatch):
    """An endpoint that accepts connections and never answers (a hung proxy, a stuck S3): a 503 within 45 s,
    not a request (and a worker) held for minutes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    _s3_storage_at(settings, monkeypatch, bucket=ARTIFACT_BUCKET, endpoint=f"http://127.0.0.1:{listener.getsockname()[1]}")
    try:
        started = time.monotonic()
        try:
            response = requests.get(f"{live_server.url}{PROXY}/1/R/artifacts/a.txt", timeout=45)
        except requests.Timeout:
            pytest.fail("no answer within 45 s: the request hangs while S3 is silent")
        assert time.monotonic() - started < 45
        assert response.status_code == 503, response.text
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    finally:
        listener.close()  # the server's pending connections are reset: its thread ends at once


@pytest.mark.parametrize("operation", STORE_OPERATIONS, ids=[op[0] for op in STORE_OPERATIONS])
def test_missing_bucket_is_a_clear_error(api, bucketless_s3, operation):
    _, method, path, body, content_type = operation
    response = _call(api, method, path, body, content_type)
    body = check_error(response, 500, "INTERNAL_ERROR")
    assert "NoSuchBucket" in body["message"], body


def _wait_for_quiet(store: StoreView, seconds: float = 10) -> None:
    """After a client vanished mid-upload: until the server has cleaned up (no temp file, no open S3 upload)."""
    deadline, quiet_since = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        if store.leftovers():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 1.0:
            return
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("declared,sent", [(10_000, 1_000), (20 * MiB, 9 * MiB)], ids=["small", "multipart-size"])
@pytest.mark.parametrize("how", ["body-cut-short", "client-disconnects"])
def test_interrupted_upload_leaves_nothing(live_server, store, declared, sent, how):
    """Content-Length promises more than arrives: no file or object appears, nothing half-written stays behind."""
    server = urlsplit(live_server.url)
    path = "1/R/artifacts/interrupted.bin"
    head = (f"PUT {PROXY}/{path} HTTP/1.1\r\nHost: {server.netloc}\r\nConnection: close\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n").encode()
    status = answer = None
    sock = socket.create_connection((server.hostname, server.port), timeout=30)
    try:
        sock.sendall(head + os.urandom(sent))
        if how == "body-cut-short":  # the client says it is done: the server answers
            sock.shutdown(socket.SHUT_WR)
            response = http.client.HTTPResponse(sock, method="PUT")
            response.begin()
            status, answer = response.status, response.read()
    finally:
        sock.close()
    _wait_for_quiet(store)
    listed = requests.get(f"{live_server.url}{PROXY}", params={"path": "1/R/artifacts"}).json()
    assert store.read(path) is None, f"{len(store.read(path))} of {declared} bytes stored as a complete artifact"
    assert store.names() == set()
    assert store.leftovers() == []
    assert listed == {}
    if status is not None:
        assert 400 <= status < 500, (status, answer)


@pytest.mark.django_db(transaction=True)
def test_upload_in_progress_is_invisible(live_server, store):
    """While a body is still arriving, neither the file nor a temporary name shows in listings or downloads."""
    server = urlsplit(live_server.url)
    path = "1/R/artifacts/slow.bin"
    data = os.urandom(12 * MiB)
    head = (f"PUT {PROXY}/{path} HTTP/1.1\r\nHost: {server.netloc}\r\nConnection: close\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    with socket.create_connection((server.hostname, server.port), timeout=30) as sock:
        sock.sendall(head + data[: 9 * MiB])
        time.sleep(0.5)
        assert requests.get(f"{live_server.url}{PROXY}", params={"path": "1/R/artifacts"}).json() == {}
        assert requests.get(f"{live_server.url}{PROXY}/{path}").status_code == 404
        sock.sendall(data[9 * MiB:])
        response = http.client.HTTPResponse(sock, method="PUT")
        response.begin()
        assert response.status == 200, response.read()
    assert store.read(path) == data
    assert store.leftovers() == []
    assert requests.get(f"{live_server.url}{PROXY}", params={"path": "1/R/artifacts"}).json() == {
        "files": [{"path": "slow.bin", "is_dir": False, "file_size": len(data)}]}


@pytest.mark.django_db(transaction=True)
def test_chunked_upload_is_stored_whole_or_refused(live_server, store):
    """A PUT without Content-Length (Transfer-Encoding: chunked, as requests, hence the MLflow client, sends an empty
    file) is stored as sent or refused: it never becomes a silently empty artifact."""
    server = urlsplit(live_server.url)
    path = "1/R/artifacts/chunked.txt"
    request = (f"PUT {PROXY}/{path} HTTP/1.1\r\nHost: {server.netloc}\r\nConnection: close\r\n"
               f"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").encode()
    with socket.create_connection((server.hostname, server.port), timeout=30) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock, method="PUT")
        response.begin()
        answer = response.read()
    if 200 <= response.status < 300:
        assert store.read(path) == b"hello world", "a 2xx for a chunked body that was not stored as sent"
    else:
        assert response.status in {400, 411}, (response.status, answer)
        assert store.read(path) is None
    assert store.leftovers() == []


# =====================================================================================================
# 5. Multipart uploads and presigned downloads, straight to S3
# =====================================================================================================


@pytest.mark.django_db(transaction=True)
def test_client_multipart_upload_on_s3(mlflow_client, s3, settings, monkeypatch, tmp_path):
    import mlflow

    settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = True
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1 * MiB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))  # moto: parts >= 5 MiB but the last
    calls = spy_store(monkeypatch, "create_multipart_upload", "complete_multipart_upload", "abort_multipart_upload", "save")
    data = random_file(tmp_path / "big.bin", 12_000_000)

    experiment = mlflow.set_experiment("artifacts-multipart")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "big.bin"), "weights")
    key = f"{experiment.experiment_id}/{run.info.run_id}/artifacts/weights/big.bin"

    assert [(call[0], call[1]) for call in calls] == [("create_multipart_upload", key), ("complete_multipart_upload", key)]
    assert calls[0][2] == 3  # 5 MiB + 5 MiB + the rest
    assert [part["part_number"] for part in calls[1][3]] == [1, 2, 3]
    assert s3.read(key) == data
    assert s3.leftovers() == []
    assert [(f.path, f.file_size) for f in mlflow_client.list_artifacts(run.info.run_id, "weights")] == [
        ("weights/big.bin", len(data))]
    downloaded = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="weights/big.bin",
                                                     dst_path=str(tmp_path / "dl"))
    assert Path(downloaded).read_bytes() == data


@pytest.mark.django_db(transaction=True)
def test_client_falls_back_to_plain_put_when_multipart_is_unsupported(mlflow_client, local, monkeypatch, tmp_path):
    """On a folder, mpu/create answers 501 with MLflow's message, and the client uploads with a plain PUT."""
    import mlflow

    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1 * MiB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    data = random_file(tmp_path / "big.bin", 6 * MiB)
    experiment = mlflow.set_experiment("artifacts-fallback")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "big.bin"))
    assert local.read(f"{experiment.experiment_id}/{run.info.run_id}/artifacts/big.bin") == data


def test_mpu_raw_create_parts_complete(api, s3, settings):
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = True
    part1, part2 = os.urandom(5 * MiB), os.urandom(1234)
    # Before 3.18 clients sent the whole local path: only its basename names the file.
    response = api.request("POST", f"{MPU}/create/1/R/artifacts/weights",
                           {"path": "/home/me/project/model.bin", "num_parts": 2})
    assert response.status_code == 200, response.content
    created = response.json()
    check_proto(mlflow_artifacts_pb2.CreateMultipartUpload.Response, created)
    assert created["upload_id"]
    assert [c["part_number"] for c in created["credentials"]] == [1, 2]
    for number, credential in enumerate(created["credentials"], start=1):
        assert credential["url"].startswith("http://127.0.0.1:")
        assert "prefix/1/R/artifacts/weights/model.bin" in credential["url"]
        assert f"partNumber={number}" in credential["url"] and "uploadId=" in credential["url"]
    assert s3.leftovers() == ["prefix/1/R/artifacts/weights/model.bin"]
    assert s3.read("1/R/artifacts/weights/model.bin") is None  # nothing visible before complete

    parts = []
    for credential, data in zip(created["credentials"], (part1, part2)):
        uploaded = requests.put(credential["url"], data=data, headers=credential.get("headers", {}))
        assert uploaded.status_code == 200, uploaded.text
        parts.append({"part_number": credential["part_number"], "etag": uploaded.headers["ETag"], "url": credential["url"]})
    response = api.request("POST", f"{MPU}/complete/1/R/artifacts/weights",
                           {"path": "model.bin", "upload_id": created["upload_id"], "parts": parts[::-1]})
    assert response.status_code == 200, response.content
    assert response.json() == {}
    assert s3.read("1/R/artifacts/weights/model.bin") == part1 + part2
    assert s3.leftovers() == []


def test_mpu_raw_abort(api, s3, settings):
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = True
    created = api.request("POST", f"{MPU}/create/1/R/artifacts", {"path": "x.bin", "num_parts": 3}).json()
    assert len(created["credentials"]) == 3
    assert s3.leftovers() == ["prefix/1/R/artifacts/x.bin"]
    response = api.request("POST", f"{MPU}/abort/1/R/artifacts", {"path": "x.bin", "upload_id": created["upload_id"]})
    assert response.status_code == 200, response.content
    assert response.json() == {}
    assert s3.leftovers() == []
    assert s3.read("1/R/artifacts/x.bin") is None


def test_mpu_num_parts_must_be_sensible(api, s3, settings):
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = True
    for num_parts in (0, 10001):
        response = api.request("POST", f"{MPU}/create/1/R/artifacts", {"path": "x.bin", "num_parts": num_parts})
        check_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert s3.leftovers() == []


@pytest.mark.parametrize("where", ["local", "s3-not-enabled"])
def test_mpu_unsupported_is_501(api, where, request, settings):
    if where == "local":
        request.getfixturevalue("local_store")
        settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = True  # the setting cannot make a folder take multipart
    else:
        request.getfixturevalue("s3_store")
        settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = False
    for action, body in [("create", {"path": "x.bin", "num_parts": 2}), ("complete", {"path": "x.bin", "upload_id": "u"}),
                         ("abort", {"path": "x.bin", "upload_id": "u"})]:
        response = api.request("POST", f"{MPU}/{action}/1/R/artifacts", body)
        check_error(response, 501, "NOT_IMPLEMENTED", MULTIPART_UNSUPPORTED)


def test_presigned_download_on_s3(api, s3, settings):
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD = True
    data = os.urandom(100_000)
    s3.write("1/R/artifacts/w.bin", data)
    response = api.request("GET", f"{PRESIGNED}/1/R/artifacts/w.bin")
    assert response.status_code == 200, response.content
    body = response.json()
    check_proto(mlflow_artifacts_pb2.GetPresignedDownloadUrl.Response, body)
    assert body["file_size"] == len(data)
    fetched = requests.get(body["url"], headers=body.get("headers", {}))
    assert fetched.status_code == 200 and fetched.content == data
    ranged = requests.get(body["url"], headers={**body.get("headers", {}), "Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == data[10:20]
    check_error(api.request("GET", f"{PRESIGNED}/1/R/artifacts/missing.bin"), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("where", ["local", "s3-not-enabled"])
def test_presigned_download_unsupported_is_501(api, where, request, settings):
    view = StoreView(request.getfixturevalue("local_store" if where == "local" else "s3_store"))
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD = where == "local"
    view.write("1/R/artifacts/w.bin", b"w")
    check_error(api.request("GET", f"{PRESIGNED}/1/R/artifacts/w.bin"), 501, "NOT_IMPLEMENTED")


@pytest.mark.django_db(transaction=True)
def test_client_downloads_through_presigned_url_when_advertised(mlflow_client, s3, settings, monkeypatch, tmp_path):
    """server-info says multipart_downloads_enabled: the 3.x client fetches the bytes from S3, not through the proxy."""
    import mlflow

    settings.MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD = True
    monkeypatch.delenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", raising=False)
    experiment = mlflow.set_experiment("artifacts-presigned")
    data = random_file(tmp_path / "src" / "w.bin", 2 * MiB + 17)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "src" / "w.bin"), "m")
    calls = spy_store(monkeypatch, "presigned_download", "open")
    downloaded = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="m/w.bin",
                                                     dst_path=str(tmp_path / "dl"))
    assert Path(downloaded).read_bytes() == data
    key = f"{experiment.experiment_id}/{run.info.run_id}/artifacts/m/w.bin"
    assert calls == [("presigned_download", key)]
