"""Big artifacts through the live server.

Default suite: 100 MB up and down through the proxy with the real 3.x client, on a local folder and on S3
(moto), compared by streamed SHA-256, with the server's memory watched on the folder store.
Opt-in (MLFLOW_SH_SLOW_TESTS=1): a file over 600 MB uploaded in parts straight to S3 with the client's default
multipart thresholds, the server advertising multipart in server-info.
"""

import hashlib
import math
import os
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ARTIFACT_BUCKET
from tests.tracking.test_artifacts import MiB, StoreView, fresh_server_info, spy_store  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = os.environ.get("MLFLOW_SH_SLOW_TESTS") == "1"


def make_file(path: Path, size: int) -> str:
    """Random bytes written in 8 MiB chunks; their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        remaining = size
        while remaining:
            chunk = os.urandom(min(8 * MiB, remaining))
            digest.update(chunk)
            out.write(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def sha256_of(chunks) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def file_chunks(path: Path):
    with path.open("rb") as handle:
        while chunk := handle.read(8 * MiB):
            yield chunk


def stored_size_and_sha(store: StoreView, path: str) -> tuple[int, str]:
    """Read around the app: the file on disk, or the object in the bucket, streamed."""
    if store.local:
        target = store.root / path
        return target.stat().st_size, sha256_of(file_chunks(target))
    response = store.s3.get_object(Bucket=ARTIFACT_BUCKET, Key=f"prefix/{path}")
    return response["ContentLength"], sha256_of(response["Body"].iter_chunks(8 * MiB))


class PeakRss:
    """The process's resident memory, sampled every 10 ms (the live server's threads run in this process)."""

    def __init__(self):
        self.baseline = self._rss()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


@pytest.fixture
def store(any_store):
    return StoreView(any_store)


def test_100mb_upload_and_download_through_the_proxy(mlflow_client, store, tmp_path):
    import mlflow

    size = 100 * MiB
    source = tmp_path / "src" / "weights.bin"
    source.parent.mkdir()
    digest = make_file(source, size)
    experiment = mlflow.set_experiment("artifacts-large")

    with PeakRss() as memory:
        started = time.monotonic()
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(source), "model")
        uploaded = time.monotonic()
        downloaded = Path(mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="model/weights.bin", dst_path=str(tmp_path / "dl")))
        finished = time.monotonic()
    print(f"\n{store.kind}: 100 MiB up in {uploaded - started:.1f}s, down in {finished - uploaded:.1f}s, "
          f"peak RSS growth {memory.growth / MiB:.0f} MiB")

    path = f"{experiment.experiment_id}/{run.info.run_id}/artifacts/model/weights.bin"
    assert stored_size_and_sha(store, path) == (size, digest)
    assert store.leftovers() == []
    assert [(f.path, f.file_size) for f in mlflow_client.list_artifacts(run.info.run_id, "model")] == [
        ("model/weights.bin", size)]
    assert downloaded.stat().st_size == size
    assert sha256_of(file_chunks(downloaded)) == digest
    if store.local:  # (moto keeps S3 objects in this process's memory: no such bound there)
        assert memory.growth < 48 * MiB, f"the server buffered the body: RSS grew {memory.growth / MiB:.0f} MiB"


@pytest.mark.slow
@pytest.mark.skipif(not SLOW, reason="big transfer: set MLFLOW_SH_SLOW_TESTS=1 to run")
def test_600mb_multipart_upload_to_s3_with_default_thresholds(mlflow_client, s3_store, settings, monkeypatch, tmp_path):
    """The server advertises multipart; the client, on its defaults (500 MB threshold, 10 MB parts), goes to S3."""
    import mlflow

    store = StoreView(s3_store)
    settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = True
    for variable in ("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE",
                     "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"):
        monkeypatch.delenv(variable, raising=False)
    size = 620 * MiB
    source = tmp_path / "huge.bin"
    digest = make_file(source, size)
    calls = spy_store(monkeypatch, "create_multipart_upload", "complete_multipart_upload", "abort_multipart_upload", "save")

    experiment = mlflow.set_experiment("artifacts-huge")
    started = time.monotonic()
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(source), "model")
    uploaded = time.monotonic()
    path = f"{experiment.experiment_id}/{run.info.run_id}/artifacts/model/huge.bin"

    parts = math.ceil(size / (10 * 1024 * 1024))
    assert [(call[0], call[1]) for call in calls] == [("create_multipart_upload", path), ("complete_multipart_upload", path)]
    assert calls[0][2] == parts
    assert [part["part_number"] for part in calls[1][3]] == list(range(1, parts + 1))
    assert store.leftovers() == []
    assert stored_size_and_sha(store, path) == (size, digest)

    downloaded = Path(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="model/huge.bin", dst_path=str(tmp_path / "dl")))
    finished = time.monotonic()
    assert downloaded.stat().st_size == size
    assert sha256_of(file_chunks(downloaded)) == digest
    print(f"\n620 MiB: {parts} parts up in {uploaded - started:.1f}s, down through the proxy in {finished - uploaded:.1f}s")
