#!/usr/bin/env python3
"""Large-file streaming through the artifact proxy: this server vs the reference `mlflow server`.

One file of ``--size`` bytes (default 1 GiB, random, generated once) is uploaded with a streamed
``PUT /api/2.0/mlflow-artifacts/artifacts/0/bench/artifacts/big.bin`` (``requests``, ``data=<file>``,
as MLflow's HTTP artifact client sends it) and downloaded again streamed (``iter_content`` 1 MiB, sha256
checked) through each server under test, one server at a time:

* ``ours-local``          gunicorn (gthread, mlflow_sh/gunicorn.conf.py) on a local artifact folder
* ``ours-s3``             the same on ``s3://bench-bucket/ours-s3`` in a moto server started here
* ``ref-uvicorn-local``   ``mlflow server --serve-artifacts`` (default: FastAPI under uvicorn), local folder
* ``ref-uvicorn-s3``      the same on S3 (moto)
* ``ref-gunicorn-local``  ``mlflow server --gunicorn-opts ...`` (Flask app on gunicorn sync workers)
* ``ref-gunicorn-s3``     the same on S3 (moto)

Each server gets its own fresh PostgreSQL database and loopback port, runs in its own process group
and is killed at exit (also on Ctrl-C). During each transfer a thread samples the RSS of the server's
processes every 50 ms (gunicorn/uvicorn master + workers; the ``mlflow server`` launcher is excluded).

Baselines: boto3 straight to the same moto endpoint (``upload_file`` / ``download_file``, default
TransferConfig) and a plain local file copy. Results: a Markdown table on stdout and in
benchmarks/results/artifacts-latest.md. A failed or timed-out transfer is reported, never raised.

Needs only the standard library, requests, boto3 and psutil (plus psycopg, or else the ``psql`` CLI, to
create the databases). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

try:
    import boto3
    import psutil
    import requests
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config as BotoConfig
except ImportError as exc:  # pragma: no cover - usage error
    sys.exit(f"bench_artifacts.py needs requests, boto3 and psutil (use the project's .venv/bin/python): {exc}")

from common import (REPO, RESULTS_DIR, drop_db, free_port, kill_all, kill_children_on_exit, machine_info, pg_exec,
                    pg_uri, recreate_db, run_to_end, spawn, stop, tail, venv_env, wait_for_health, write_report)

MiB = 1024 * 1024
CHUNK = MiB
ARTIFACT_PATH = "0/bench/artifacts/big.bin"
ARTIFACT_URL = "/api/2.0/mlflow-artifacts/artifacts/" + ARTIFACT_PATH
BUCKET = "bench-bucket"
S3_ENV = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
GOAL_GROWTH_MIB = 50

# name -> (implementation, storage)
SERVERS = {
    "ours-local": ("ours", "local"),
    "ours-s3": ("ours", "s3"),
    "ref-uvicorn-local": ("ref-uvicorn", "local"),
    "ref-uvicorn-s3": ("ref-uvicorn", "s3"),
    "ref-gunicorn-local": ("ref-gunicorn", "local"),
    "ref-gunicorn-s3": ("ref-gunicorn", "s3"),
}
LABELS = {
    "ours": "ours (Django, gunicorn gthread)",
    "ref-uvicorn": "reference (FastAPI, uvicorn)",
    "ref-gunicorn": "reference (Flask, gunicorn sync)",
}
ALIASES = {
    "all": list(SERVERS),
    "ours": ["ours-local", "ours-s3"],
    "ref": [n for n in SERVERS if n.startswith("ref-")],
    "ref-uvicorn": ["ref-uvicorn-local", "ref-uvicorn-s3"],
    "ref-gunicorn": ["ref-gunicorn-local", "ref-gunicorn-s3"],
    "local": [n for n, (_, s) in SERVERS.items() if s == "local"],
    "s3": [n for n, (_, s) in SERVERS.items() if s == "s3"],
}
WHAT_IF = "ours-s3-what-if"
# `--what-if-inmem-chunks N`: ours on S3 with boto3's TransferConfig.max_in_memory_upload_chunks set to N,
# patched into mlflow_sh.env before gunicorn starts (the project is not modified). For diagnosis only.
PATCH_LAUNCHER = """\
import sys
import mlflow_sh.env as env
if not hasattr(env, "_streaming_transfer_config"):
    sys.exit("what-if: mlflow_sh.env._streaming_transfer_config is gone; update bench_artifacts.py")
_orig, _n = env._streaming_transfer_config, int(sys.argv[1])
def _patched():
    config = _orig()
    config.max_in_memory_upload_chunks = _n
    return config
env._streaming_transfer_config = _patched
from gunicorn.app.wsgiapp import run
sys.argv = ["gunicorn", *sys.argv[2:]]
run()
"""

# Lines of a server log that mean a worker died or a request crashed.
LOG_ALARMS = re.compile(
    r"WORKER TIMEOUT|was sent SIGKILL|was sent code|Child process \[?\d+\]? died|Worker exiting|"
    r"MemoryError|Traceback \(most recent call last\)|Exception in ASGI application|Internal Server Error",
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------------------------------
# Memory sampling
# --------------------------------------------------------------------------------------------------


class ProcessTree:
    """The processes of a server: the root and its descendants, or only the descendants (to leave out
    the `mlflow server` launcher, which just waits for its gunicorn/uvicorn child)."""

    def __init__(self, root_pid: int, include_root: bool):
        self.root = psutil.Process(root_pid)
        self.include_root = include_root
        self._cache: dict[int, psutil.Process] = {}

    def processes(self) -> list[psutil.Process]:
        try:
            found = self.root.children(recursive=True)
        except psutil.Error:
            found = []
        if self.include_root:
            found = [self.root, *found]
        procs = []
        for p in found:
            cached = self._cache.get(p.pid)
            if cached is None or cached.create_time() != p.create_time():
                self._cache[p.pid] = cached = p
            procs.append(cached)
        return procs

    def snapshot(self) -> dict[int, int]:
        """pid -> RSS bytes."""
        rss = {}
        for p in self.processes():
            try:
                rss[p.pid] = p.memory_info().rss
            except psutil.Error:
                pass
        return rss

    def cpu_seconds(self) -> dict[int, float]:
        """pid -> user + system CPU seconds so far."""
        cpu = {}
        for p in self.processes():
            try:
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        return cpu

    def describe(self) -> str:
        parts = []
        for p in self.processes():
            try:
                cmd = " ".join(p.cmdline()[:4]).replace("\n", " ")
            except psutil.Error:
                cmd = "?"
            parts.append(f"{p.pid} ({cmd[:60]})")
        return "; ".join(parts)


class Sampler:
    """Samples a ProcessTree's total RSS every `interval` seconds in a thread; keeps the peak."""

    def __init__(self, tree: ProcessTree, interval: float):
        self.tree, self.interval = tree, interval
        self.peak_total = 0
        self.peak_per_pid: dict[int, int] = {}
        self.pids_seen: set[int] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"rss-sampler-{tree.root.pid}")

    def _sample(self) -> None:
        snap = self.tree.snapshot()
        self.samples += 1
        self.pids_seen.update(snap)
        self.peak_total = max(self.peak_total, sum(snap.values()))
        for pid, rss in snap.items():
            self.peak_per_pid[pid] = max(self.peak_per_pid.get(pid, 0), rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "Sampler":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()


def settled_snapshot(tree: ProcessTree, seconds: float = 1.0) -> dict[int, int]:
    """RSS after a pause (so short-lived buffers are gone): the last of a few samples."""
    time.sleep(seconds)
    return tree.snapshot()


def mib(n: int | float | None) -> str:
    return "—" if n is None else f"{n / MiB:.0f}"


# --------------------------------------------------------------------------------------------------
# Transfers
# --------------------------------------------------------------------------------------------------


class TransferTimeout(Exception):
    pass


class DeadlineReader:
    """The open file, read by urllib3 as with ``data=open(path, 'rb')`` (Content-Length set, body read in
    urllib3's blocks), but aborting the upload once the deadline has passed."""

    def __init__(self, fileobj, size: int, deadline: float):
        self.f, self.size, self.deadline, self.sent = fileobj, size, deadline, 0

    def read(self, n: int = -1) -> bytes:
        if time.monotonic() > self.deadline:
            raise TransferTimeout(f"upload cut at the time limit after {self.sent / MiB:.0f} MiB")
        data = self.f.read(n)
        self.sent += len(data)
        return data

    def __len__(self) -> int:  # requests' super_len -> Content-Length
        return self.size

    def __iter__(self):  # requests treats objects with __iter__ as streams
        while chunk := self.read(CHUNK):
            yield chunk


@dataclass
class Transfer:
    direction: str  # "upload" / "download"
    ok: bool = False
    seconds: float | None = None
    nbytes: int = 0
    error: str = ""
    rss_before: int | None = None
    rss_peak: int | None = None
    rss_after: int | None = None
    cpu_seconds: float | None = None
    per_pid: str = ""
    log_alarms: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def mib_s(self) -> float | None:
        if self.ok and self.seconds:
            return self.nbytes / MiB / self.seconds
        return None

    @property
    def growth(self) -> int | None:
        if self.rss_before is None or self.rss_peak is None:
            return None
        return self.rss_peak - self.rss_before


def short_error(exc: BaseException) -> str:
    text = f"{exc.__class__.__name__}: {exc}"
    text = re.sub(r"\s+", " ", text)
    return text[:240]


def http_upload(url: str, path: Path, size: int, limit: float) -> Transfer:
    res = Transfer("upload")
    t0 = time.monotonic()
    deadline = t0 + limit
    with requests.Session() as session, open(path, "rb") as f:
        body = DeadlineReader(f, size, deadline)
        try:
            # Read timeout also bounds each socket send; the deadline bounds the whole body.
            r = session.put(url, data=body, timeout=(10, max(5.0, min(120.0, limit))))
            res.seconds = time.monotonic() - t0
            res.nbytes = body.sent
            if r.status_code != 200:
                res.error = f"HTTP {r.status_code}: {r.text[:200]!r}"
            elif body.sent != size:
                res.error = f"only {body.sent} of {size} bytes sent"
            else:
                res.ok = True
        except TransferTimeout as exc:
            res.seconds = time.monotonic() - t0
            res.nbytes = body.sent
            res.error = f"TIMEOUT: {exc} (limit {limit:.0f}s)"
        except requests.RequestException as exc:
            res.seconds = time.monotonic() - t0
            res.nbytes = body.sent
            cause = exc.__context__ if isinstance(exc.__context__, TransferTimeout) else None
            res.error = (f"TIMEOUT: {cause} (limit {limit:.0f}s)" if cause
                         else f"{short_error(exc)} after {body.sent / MiB:.0f} MiB sent")
    return res


def http_download(url: str, size: int, sha256: str, limit: float) -> Transfer:
    res = Transfer("download")
    t0 = time.monotonic()
    deadline = t0 + limit
    digest = hashlib.sha256()
    n = 0
    try:
        with requests.Session() as session, session.get(url, stream=True, timeout=(10, max(5.0, min(120.0, limit)))) as r:
            if r.status_code != 200:
                res.error = f"HTTP {r.status_code}: {r.text[:200]!r}"
            else:
                for chunk in r.iter_content(CHUNK):
                    digest.update(chunk)
                    n += len(chunk)
                    if time.monotonic() > deadline:
                        raise TransferTimeout(f"download cut at the time limit after {n / MiB:.0f} MiB")
                if n != size:
                    res.error = f"got {n} of {size} bytes"
                elif digest.hexdigest() != sha256:
                    res.error = "sha256 MISMATCH"
                else:
                    res.ok = True
                if "Content-Length" not in r.headers:
                    res.note = "no Content-Length (chunked)"
    except TransferTimeout as exc:
        res.error = f"TIMEOUT: {exc} (limit {limit:.0f}s)"
    except requests.RequestException as exc:
        res.error = f"{short_error(exc)} after {n / MiB:.0f} MiB received"
    res.seconds = time.monotonic() - t0
    res.nbytes = n
    return res


def warm_up(base: str, threads: int = 8, rounds: int = 3) -> list[str]:
    """256 KiB PUT + GET from `threads` concurrent fresh connections, a few times: the workers (and most of
    their threads) have then imported and built their artifact code (boto3 clients, django-storages'
    per-thread S3 resource) before the measured transfer. Those one-off costs are not streaming memory;
    the payload is small so that the warm-up does not pre-inflate the heap either."""
    errors: list[str] = []
    payload = os.urandom(256 * 1024)

    def one(i: int) -> None:
        url = f"{base}/api/2.0/mlflow-artifacts/artifacts/0/bench/warmup/w{i}.bin"
        try:
            with requests.Session() as s:
                r = s.put(url, data=payload, timeout=120)
                if r.status_code != 200:
                    errors.append(f"warm-up PUT {r.status_code}: {r.text[:120]!r}")
                    return
                r = s.get(url, timeout=120)
                if r.status_code != 200 or r.content != payload:
                    errors.append(f"warm-up GET {r.status_code}")
        except requests.RequestException as exc:
            errors.append(f"warm-up: {short_error(exc)}")

    for rnd in range(rounds):
        workers = [threading.Thread(target=one, args=(rnd * threads + t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(300)
    return errors


# --------------------------------------------------------------------------------------------------
# moto (S3) and the servers
# --------------------------------------------------------------------------------------------------


@dataclass
class Moto:
    venv: Path
    log_path: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    command: str = ""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.port = free_port()
        self.log_path.write_text("")
        exe = self.venv / "bin" / "moto_server"
        cmd = [str(exe), "-H", "127.0.0.1", "-p", str(self.port)] if exe.exists() else \
            [str(self.venv / "bin" / "python"), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.command = shlex.join(cmd)
        env = dict(os.environ, **S3_ENV)
        self.proc = spawn(cmd, cwd=Path(tempfile.gettempdir()), env=env, log_path=self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto exited with {self.proc.returncode}:\n{tail(self.log_path)}")
            try:
                requests.get(self.endpoint + "/", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"moto did not answer within {timeout:.0f}s:\n{tail(self.log_path)}")
        self.client().create_bucket(Bucket=BUCKET)

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="x",
                            aws_secret_access_key="x", config=BotoConfig(s3={"addressing_style": "path"}))

    def empty_prefix(self, prefix: str) -> None:
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})

    def rss(self) -> int | None:
        try:
            return psutil.Process(self.proc.pid).memory_info().rss
        except (psutil.Error, AttributeError):
            return None

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None


@dataclass
class Server:
    name: str
    venv: Path
    pg_base: str
    workers: int
    log_dir: Path
    work_dir: Path
    ref_gunicorn_opts: str
    startup_timeout: float
    moto: Moto | None = None
    port: int = 0
    proc: subprocess.Popen | None = None
    artifacts: Path | None = None
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    log_offset: int = 0
    patch_chunks: int = 0

    @property
    def label(self) -> str:
        if self.patch_chunks:
            return f"ours, what-if: max_in_memory_upload_chunks={self.patch_chunks}"
        return LABELS[self.impl]

    @property
    def impl(self) -> str:
        return SERVERS[self.name][0]

    @property
    def storage(self) -> str:
        return SERVERS[self.name][1]

    @property
    def db(self) -> str:
        return "mlflow_bench_art_" + self.name.replace("-", "_")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"artifacts-{self.name}.log"

    @property
    def s3_prefix(self) -> str:
        return self.name

    @property
    def destination(self) -> str:
        return f"s3://{BUCKET}/{self.s3_prefix}" if self.storage == "s3" else str(self.artifacts)

    def env(self) -> tuple[dict, str]:
        """The environment, and the part of it worth printing in the report."""
        env = venv_env(self.venv)
        shown = {}
        if self.storage == "s3":
            shown.update({"MLFLOW_S3_ENDPOINT_URL": self.moto.endpoint, **S3_ENV})
        if self.impl != "ours":
            shown["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        env.update(shown)
        return env, " ".join(f"{k}={v}" for k, v in shown.items())

    def start(self) -> None:
        self.port = free_port()
        self.artifacts = Path(tempfile.mkdtemp(prefix=f"artifacts-{self.name}-", dir=self.work_dir))
        self.log_path.write_text("")
        recreate_db(self.pg_base, self.db)
        env, shown = self.env()
        bin_ = self.venv / "bin"
        if self.impl == "ours":
            uri = pg_uri(self.pg_base, self.db)
            env.update({"MLFLOW_BACKEND_STORE_URI": uri, "MLFLOW_ARTIFACTS_DESTINATION": self.destination,
                        # only for the startup log line of gunicorn.conf.py; --workers/--bind win anyway
                        "MLFLOW_WORKERS": str(self.workers), "MLFLOW_PORT": str(self.port)})
            prefix = f"MLFLOW_BACKEND_STORE_URI={uri} MLFLOW_ARTIFACTS_DESTINATION={self.destination} {shown}".strip()
            migrate = [str(bin_ / "python"), "manage.py", "migrate", "--noinput"]
            self.commands.append(f"{prefix} {shlex.join(migrate)}")
            rc = run_to_end(migrate, cwd=REPO, env=env, log_path=self.log_path)
            if rc != 0:
                raise RuntimeError(f"manage.py migrate exited with {rc}:\n{tail(self.log_path)}")
            cmd = [str(bin_ / "gunicorn"), "-c", "mlflow_sh/gunicorn.conf.py", "--workers", str(self.workers),
                   "--bind", f"127.0.0.1:{self.port}"]
            if self.patch_chunks:
                # python -c <launcher> N <gunicorn args>: same gunicorn, TransferConfig patched first
                cmd = [str(bin_ / "python"), "-c", PATCH_LAUNCHER, str(self.patch_chunks), *cmd[1:]]
                shown_cmd = (f"{shlex.join(cmd[:2])} '<launcher: TransferConfig.max_in_memory_upload_chunks="
                             f"{self.patch_chunks}, then gunicorn>' {shlex.join(cmd[3:])}")
            else:
                shown_cmd = shlex.join(cmd)
            self.commands.append(f"{prefix} {shown_cmd}   # cwd {REPO}")
            cwd = REPO
        else:
            uri = pg_uri(self.pg_base, self.db, sqlalchemy=True)
            cmd = [str(bin_ / "mlflow"), "server", "--backend-store-uri", uri,
                   "--artifacts-destination", self.destination, "--serve-artifacts",
                   "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
            if self.impl == "ref-gunicorn":
                cmd += ["--gunicorn-opts", self.ref_gunicorn_opts]
            self.commands.append(f"{shown} {shlex.join(cmd)}")
            cwd = self.artifacts  # stray mlruns/ or mlflow.db fallbacks land in the temp dir
        self.proc = spawn(cmd, cwd=cwd, env=env, log_path=self.log_path)
        wait_for_health(self.url, self.proc, self.startup_timeout, self.log_path)

    def tree(self) -> ProcessTree:
        # ours: gunicorn master + workers. Reference: the `mlflow server` launcher only waits for its
        # gunicorn/uvicorn child, so count that child and its workers.
        return ProcessTree(self.proc.pid, include_root=self.impl == "ours")

    def launcher_rss(self) -> int | None:
        if self.impl == "ours":
            return None
        try:
            return psutil.Process(self.proc.pid).memory_info().rss
        except psutil.Error:
            return None

    def new_log_alarms(self) -> list[str]:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                text = f.read().decode(errors="replace")
                self.log_offset = f.tell()
        except OSError:
            return []
        return [line.strip()[:200] for line in text.splitlines() if LOG_ALARMS.search(line)]

    def seed_directly(self, src: Path) -> None:
        """Put the file where the server reads it, when the upload through the server failed."""
        if self.storage == "s3":
            self.moto.client().upload_file(str(src), BUCKET, f"{self.s3_prefix}/{ARTIFACT_PATH}")
        else:
            target = self.artifacts / ARTIFACT_PATH
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None
        if self.artifacts is not None:
            shutil.rmtree(self.artifacts, ignore_errors=True)
            self.artifacts = None
        if self.storage == "s3" and self.port and self.moto is not None and self.moto.proc is not None:
            self.port = 0  # once
            try:
                self.moto.empty_prefix(self.s3_prefix + "/")
            except Exception as exc:  # noqa: BLE001
                self.notes.append(f"could not empty s3://{BUCKET}/{self.s3_prefix}: {short_error(exc)}")


# --------------------------------------------------------------------------------------------------
# Workload per server
# --------------------------------------------------------------------------------------------------


def measured(srv: Server, fn, interval: float, moto: Moto | None) -> Transfer:
    tree = srv.tree()
    before = settled_snapshot(tree, 1.0)
    pids_before = set(before)
    moto_before = moto.rss() if moto else None
    moto_peak = moto_before or 0
    moto_stop = threading.Event()

    def watch_moto():
        nonlocal moto_peak
        while not moto_stop.is_set():
            moto_peak = max(moto_peak, moto.rss() or 0)
            moto_stop.wait(interval * 4)

    watcher = threading.Thread(target=watch_moto, daemon=True) if moto else None
    if watcher:
        watcher.start()
    cpu_before = tree.cpu_seconds()
    with Sampler(tree, interval) as sampler:
        res = fn()
    cpu_after = tree.cpu_seconds()
    moto_stop.set()
    res.cpu_seconds = sum(max(0.0, cpu_after[pid] - cpu_before.get(pid, 0.0)) for pid in cpu_after)
    after = settled_snapshot(tree, 1.0)
    res.rss_before = sum(before.values())
    res.rss_peak = max(sampler.peak_total, res.rss_before)
    res.rss_after = sum(after.values())
    per = []
    for pid in sorted(pids_before | sampler.pids_seen):
        b, p, a = before.get(pid), sampler.peak_per_pid.get(pid), after.get(pid)
        per.append(f"{pid}: {mib(b)}→{mib(p)}→{mib(a)}")
    res.per_pid = ", ".join(per)
    gone = pids_before - set(after)
    new = set(after) - pids_before
    if gone or new:
        res.log_alarms.append(f"worker processes changed: gone {sorted(gone)}, new {sorted(new)}")
    res.log_alarms += srv.new_log_alarms()
    if res.log_alarms and res.ok:
        res.note = (res.note + "; " if res.note else "") + "log alarms (see notes)"
    if moto:
        res.note = (res.note + "; " if res.note else "") + f"moto RSS {mib(moto_before)}→{mib(moto_peak)} MiB"
    if srv.proc is not None and srv.proc.poll() is not None:
        res.ok = False
        res.error = (res.error + "; " if res.error else "") + f"server exited with {srv.proc.returncode}"
    return res


def run_server(srv: Server, src: Path, size: int, sha256: str, limit: float, interval: float) -> list[Transfer]:
    url = srv.url + ARTIFACT_URL
    errors = warm_up(srv.url)
    if errors:
        srv.notes.append("warm-up: " + "; ".join(sorted(set(errors))[:3]))
    srv.new_log_alarms()  # skip start-up and warm-up lines
    srv.notes.append(f"processes measured: {srv.tree().describe()}")
    if (launcher := srv.launcher_rss()) is not None:
        srv.notes.append(f"`mlflow server` launcher process (not counted): {mib(launcher)} MiB RSS")
    moto = srv.moto if srv.storage == "s3" else None

    log(f"   upload {size / MiB:.0f} MiB ...")
    up = measured(srv, lambda: http_upload(url, src, size, limit), interval, moto)
    log(f"   upload: {fmt_result(up)}")
    results = [up]
    if srv.proc is None or srv.proc.poll() is not None:
        results.append(Transfer("download", error="skipped: server is down"))
        return results
    if not up.ok:
        try:
            srv.seed_directly(src)
            seeded = True
        except Exception as exc:  # noqa: BLE001
            seeded = False
            results.append(Transfer("download", error=f"skipped: upload failed and seeding failed: {short_error(exc)}"))
        if not seeded:
            return results
    log(f"   download {size / MiB:.0f} MiB ...")
    down = measured(srv, lambda: http_download(url, size, sha256, limit), interval, moto)
    if not up.ok:
        down.note = (down.note + "; " if down.note else "") + "file seeded directly (upload failed)"
    log(f"   download: {fmt_result(down)}")
    results.append(down)
    return results


def fmt_result(t: Transfer) -> str:
    if t.ok:
        s = f"ok, {t.seconds:.1f}s, {t.mib_s:.0f} MiB/s"
    else:
        s = f"FAILED ({t.error})" + (f" after {t.seconds:.1f}s" if t.seconds else "")
    if t.cpu_seconds is not None:
        s += f", server CPU {t.cpu_seconds:.1f}s"
    if t.rss_before is not None:
        s += f", RSS {mib(t.rss_before)}/{mib(t.rss_peak)}/{mib(t.rss_after)} MiB (growth {mib(t.growth)})"
    return s


# --------------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------------


@dataclass
class Baseline:
    name: str
    transfers: list[Transfer]
    description: str


def self_rss() -> int:
    return psutil.Process().memory_info().rss


def with_self_rss(fn, interval: float) -> Transfer:
    tree = ProcessTree(os.getpid(), include_root=True)
    tree.processes = lambda: [tree.root]  # only this process (boto3 runs in it)
    before = tree.snapshot()
    with Sampler(tree, interval) as sampler:
        res = fn()
    res.rss_before = sum(before.values())
    res.rss_peak = max(sampler.peak_total, res.rss_before)
    res.rss_after = sum(tree.snapshot().values())
    return res


def baseline_copy(src: Path, size: int, sha256: str, work: Path) -> Baseline:
    dst = work / "copy-baseline.bin"
    up = Transfer("upload")
    t0 = time.monotonic()
    try:
        shutil.copyfile(src, dst)
        up.seconds, up.nbytes, up.ok = time.monotonic() - t0, size, True
    except OSError as exc:
        up.error = short_error(exc)
    down = Transfer("download")
    t0 = time.monotonic()
    try:
        digest, n = hashlib.sha256(), 0
        with open(dst, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                n += len(chunk)
        down.seconds, down.nbytes = time.monotonic() - t0, n
        down.ok = n == size and digest.hexdigest() == sha256
        if not down.ok:
            down.error = "sha256 MISMATCH"
    except OSError as exc:
        down.error = short_error(exc)
    dst.unlink(missing_ok=True)
    return Baseline("local file copy", [up, down],
                    "`shutil.copyfile` of the file into the temp dir; then reading the copy in 1 MiB chunks with "
                    "sha256 (as the HTTP download loop does). Both from/to the page cache, no fsync.")


def baseline_boto3(moto: Moto, src: Path, size: int, sha256: str, work: Path, interval: float) -> Baseline:
    client = moto.client()
    key = "baseline/big.bin"
    dst = work / "boto3-baseline.bin"
    config = TransferConfig()  # defaults: 8 MiB threshold and parts, 10 threads

    def up_fn() -> Transfer:
        t = Transfer("upload")
        t0 = time.monotonic()
        try:
            client.upload_file(str(src), BUCKET, key, Config=config)
            t.ok, t.nbytes = True, size
        except Exception as exc:  # noqa: BLE001
            t.error = short_error(exc)
        t.seconds = time.monotonic() - t0
        return t

    def down_fn() -> Transfer:
        t = Transfer("download")
        t0 = time.monotonic()
        try:
            client.download_file(BUCKET, key, str(dst), Config=config)
            t.seconds = time.monotonic() - t0
            t.nbytes = dst.stat().st_size
            t.ok = True
        except Exception as exc:  # noqa: BLE001
            t.seconds = time.monotonic() - t0
            t.error = short_error(exc)
        return t

    def get_fn() -> Transfer:
        t = Transfer("download (one GET)")
        t0 = time.monotonic()
        digest, n = hashlib.sha256(), 0
        try:
            body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
            for chunk in body.iter_chunks(CHUNK):
                digest.update(chunk)
                n += len(chunk)
            t.nbytes = n
            t.ok = n == size and digest.hexdigest() == sha256
            if not t.ok:
                t.error = f"got {n} bytes, sha256 {'ok' if digest.hexdigest() == sha256 else 'MISMATCH'}"
        except Exception as exc:  # noqa: BLE001
            t.error = short_error(exc)
        t.seconds = time.monotonic() - t0
        return t

    up = with_self_rss(up_fn, interval)
    single = with_self_rss(get_fn, interval) if up.ok else Transfer("download (one GET)", error="skipped: upload failed")
    down = with_self_rss(down_fn, interval) if up.ok else Transfer("download", error="skipped: upload failed")
    if down.ok:  # checked after the clock stopped: download_file writes a file, there is no stream to hash
        digest = hashlib.sha256()
        with open(dst, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != sha256 or down.nbytes != size:
            down.ok, down.error = False, "sha256 MISMATCH"
    dst.unlink(missing_ok=True)
    try:
        moto.empty_prefix("baseline/")
    except Exception:  # noqa: BLE001
        pass
    return Baseline("boto3 ↔ moto", [up, single, down],
                    f"boto3 `upload_file` / `download_file` with the default TransferConfig straight to moto "
                    f"({moto.endpoint}); download written to a file, sha256 checked after the clock stopped. "
                    "*download (one GET)*: a single streamed `get_object` read with `iter_chunks(1 MiB)` and "
                    "sha256 (what ours does behind its proxy). `download_file` fetches 8 MiB ranges on 10 threads, "
                    "and moto reads the whole object for every ranged GET, so that row measures moto more than "
                    "boto3. RSS columns: the benchmark process itself, where boto3 runs.")


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def artifacts_machine_info(venv: Path, pg_base: str, work: Path) -> list[tuple[str, str]]:
    packages = ("mlflow", "django", "gunicorn", "uvicorn", "flask", "boto3", "botocore", "s3transfer",
                "django-storages", "moto", "requests", "urllib3")
    try:
        pgv = pg_exec(pg_base, "SHOW server_version")
    except Exception as exc:  # noqa: BLE001
        pgv = f"unknown ({exc.__class__.__name__})"
    try:
        fs = psutil.disk_usage(str(work))
        disk = f"{work} ({fs.free / 1024**3:.0f} GiB free)"
    except OSError:
        disk = str(work)
    return [
        *machine_info(venv, packages),
        ("PostgreSQL", pgv),
        ("temp dir", disk),
        ("load average at start (1/5/15 min)", load_average()),
    ]


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def cell_result(t: Transfer) -> str:
    if t.ok:
        extra = [a for a in t.log_alarms]
        return "ok" + (" ⚠ " + "; ".join(extra)[:120] if extra else "")
    return "**FAILED**: " + t.error.replace("|", "/")[:200]


def build_report(args, info, size: int, servers: list[Server], status: dict[str, str],
                 results: dict[str, list[Transfer]], baselines: list[Baseline], moto: Moto | None,
                 wall: float) -> str:
    out = ["# Artifact streaming benchmark", ""]
    out.append(f"File: {size / MiB:.0f} MiB of random bytes, `PUT` streamed from the file (requests `data=<file>`, "
               f"Content-Length set), `GET` streamed (`iter_content` {CHUNK // MiB} MiB, sha256 checked). "
               f"{args.workers} workers per server, one server at a time, time limit {args.timeout:.0f}s per transfer "
               f"(reference: {args.ref_timeout:.0f}s). *server CPU s* = user+system CPU seconds of those processes during the transfer (steadier than wall time on a busy machine). RSS = sum over the server's gunicorn/uvicorn master and "
               f"worker processes, sampled every {args.interval * 1000:.0f} ms; *before* after a warm-up and 1 s "
               f"of quiet, *after* 1 s after the transfer; growth = peak − before. MiB = 2^20 bytes.")
    out.append("")
    out.append("## Machine")
    out.append("")
    for k, v in info + [("load average at end", load_average()), ("total wall time", f"{wall:.0f}s")]:
        out.append(f"* **{k}**: {v}")
    out.append("")
    out.append("## Results")
    out.append("")
    out.append("| server | storage | direction | seconds | MiB/s | server CPU s | RSS before | RSS peak | RSS after | growth | result |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for srv in servers:
        label = srv.label
        transfers = results.get(srv.name)
        if not transfers:
            out.append(f"| {label} | {srv.storage} | — | — | — | — | — | — | — | — | **{status.get(srv.name, 'not run')}** |")
            continue
        for t in transfers:
            secs = f"{t.seconds:.1f}" if t.seconds is not None else "—"
            speed = f"{t.mib_s:.0f}" if t.mib_s is not None else "—"
            note = f" ({t.note})" if t.note and "moto RSS" not in t.note else ""
            growth = mib(t.growth)
            cpu = f"{t.cpu_seconds:.1f}" if t.cpu_seconds is not None else "—"
            out.append(f"| {label} | {srv.storage} | {t.direction} | {secs} | {speed} | {cpu} | {mib(t.rss_before)} | "
                       f"{mib(t.rss_peak)} | {mib(t.rss_after)} | {growth} | {cell_result(t)}{note} |")
    out.append("")
    if baselines:
        out.append("### Baselines (no server in between)")
        out.append("")
        out.append("| baseline | direction | seconds | MiB/s | client RSS before | peak | growth | result |")
        out.append("|---|---|---:|---:|---:|---:|---:|---|")
        for b in baselines:
            for t in b.transfers:
                secs = f"{t.seconds:.1f}" if t.seconds is not None else "—"
                speed = f"{t.mib_s:.0f}" if t.mib_s is not None else "—"
                out.append(f"| {b.name} | {t.direction} | {secs} | {speed} | {mib(t.rss_before)} | {mib(t.rss_peak)} | "
                           f"{mib(t.growth)} | {cell_result(t)} |")
        out.append("")
        for b in baselines:
            out.append(f"* {b.name}: {b.description}")
        out.append("")

    out.append("## Goal: ours grows ≤ ~50 MiB RSS per transfer, no errors or worker timeouts")
    out.append("")
    any_ours = False
    for srv in servers:
        if srv.impl != "ours" or srv.patch_chunks:
            continue
        any_ours = True
        transfers = results.get(srv.name) or []
        if len(transfers) < 2:
            out.append(f"* {srv.name}: **not met** ({status.get(srv.name, 'not run')})")
            continue
        bad = []
        for t in transfers:
            if not t.ok:
                bad.append(f"{t.direction} failed")
            elif t.log_alarms:
                bad.append(f"{t.direction}: {'; '.join(t.log_alarms)[:120]}")
            if t.growth is not None and t.growth > GOAL_GROWTH_MIB * MiB:
                bad.append(f"{t.direction} grew {mib(t.growth)} MiB")
        growths = ", ".join(f"{t.direction} +{mib(t.growth)} MiB" for t in transfers)
        out.append(f"* {srv.name}: {'**met**' if not bad else '**not met** (' + '; '.join(bad) + ')'} — {growths}")
    if not any_ours:
        out.append("* (ours not run)")
    out.append("")

    out.append("## Commands")
    out.append("")
    if moto is not None and moto.command:
        out.append(f"* moto: `{moto.command}`, bucket `{BUCKET}` created with boto3")
    for srv in servers:
        for c in srv.commands:
            out.append(f"* {srv.name}: `{c}`")
    out.append("")
    out.append("## Notes")
    out.append("")
    for srv in servers:
        lines = list(srv.notes)
        for t in results.get(srv.name) or []:
            if t.per_pid:
                lines.append(f"{t.direction}: RSS per process before→peak→after (MiB): {t.per_pid}")
            if t.note and "moto RSS" in t.note:
                lines.append(f"{t.direction}: {t.note}")
            for a in t.log_alarms:
                lines.append(f"{t.direction}: log: `{a}`")
        lines.append(f"log: {srv.log_path.relative_to(REPO) if srv.log_path.is_relative_to(REPO) else srv.log_path}")
        out.append(f"* **{srv.name}**")
        for line in lines:
            out.append(f"  * {line}")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1GiB, 100M, 1073741824)")
    factor = {"": 1, "k": 1024, "m": MiB, "g": 1024 * MiB, "t": 1024 * 1024 * MiB}[m.group(2)]
    return int(float(m.group(1)) * factor)


def parse_servers(text: str) -> list[str]:
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        expanded = ALIASES.get(part, [part])
        for name in expanded:
            if name not in SERVERS:
                raise argparse.ArgumentTypeError(
                    f"unknown server {name!r}; choose from {', '.join(SERVERS)} or {', '.join(ALIASES)}")
            if name not in names:
                names.append(name)
    return names


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Stream one large file up and down through the artifact proxy of this server and of the "
                    "reference `mlflow server` (local folder and S3/moto), measuring time, throughput and the "
                    "servers' RSS; plus boto3-to-moto and local-copy baselines.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--size", type=parse_size, default=None,
                   help="file size, e.g. 1GiB, 256M, 1073741824 (default 1 GiB; 100 MiB with --quick)")
    p.add_argument("--quick", action="store_true", help="smoke run: 100 MiB")
    p.add_argument("--servers", type=parse_servers, default=list(SERVERS),
                   help=f"comma-separated servers: {', '.join(SERVERS)}; or groups {', '.join(ALIASES)}")
    p.add_argument("--no-baselines", action="store_true", help="skip the boto3 and local-copy baselines")
    p.add_argument("--workers", type=int, default=2, help="worker processes per server")
    p.add_argument("--timeout", type=float, default=300.0, help="time limit per transfer for ours (s)")
    p.add_argument("--ref-timeout", type=float, default=180.0,
                   help="time limit per transfer for the reference servers (s); a cut transfer is reported")
    p.add_argument("--interval", type=float, default=0.05, help="RSS sampling interval (s)")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for /health")
    p.add_argument("--pg", default=os.environ.get("BENCH_PG_URI", "postgresql://postgres@127.0.0.1:5432"),
                   help="PostgreSQL server URI (env BENCH_PG_URI); databases mlflow_bench_art_<server> are "
                        "dropped and re-created on it")
    p.add_argument("--ref-gunicorn-opts", default="--log-level warning --timeout 600",
                   help="--gunicorn-opts for the reference's gunicorn/Flask flavour")
    p.add_argument("--tmpdir", default=None, help="where the test file and the artifact folders go (default: system temp)")
    p.add_argument("--venv", default=str(REPO / ".venv"), help="virtualenv with gunicorn, mlflow, moto")
    p.add_argument("--output", default=str(RESULTS_DIR / "artifacts-latest.md"), help="Markdown report path")
    p.add_argument("--keep-dbs", action="store_true", help="keep the benchmark databases afterwards")
    p.add_argument("--what-if-inmem-chunks", type=int, default=0, metavar="N",
                   help=f"diagnosis: also run `{WHAT_IF}`, ours on S3 with boto3's "
                        "TransferConfig.max_in_memory_upload_chunks=N patched in at start-up (project files untouched; "
                        "boto3's default is 10 parts of multipart_chunksize in memory per upload)")
    args = p.parse_args(argv)
    if args.what_if_inmem_chunks < 0:
        p.error("--what-if-inmem-chunks must be >= 1")
    if args.what_if_inmem_chunks:
        SERVERS[WHAT_IF] = ("ours", "s3")
        at = args.servers.index("ours-s3") + 1 if "ours-s3" in args.servers else len(args.servers)
        args.servers.insert(at, WHAT_IF)
    if args.size is None:
        args.size = 100 * MiB if args.quick else 1024 * MiB
    if args.size < MiB:
        p.error("--size must be at least 1 MiB")
    return args


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    left = size
    with open(path, "wb") as f:
        while left > 0:
            chunk = os.urandom(min(CHUNK, left))
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def main(argv=None) -> int:
    args = parse_args(argv)
    venv = Path(args.venv)
    for exe in ("python", "gunicorn", "mlflow"):
        if not (venv / "bin" / exe).exists():
            print(f"warning: {venv / 'bin' / exe} not found", file=sys.stderr)
    kill_children_on_exit()

    log_dir = RESULTS_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        pg_exec(args.pg, "SELECT 1")
    except Exception as exc:  # noqa: BLE001
        print(f"cannot reach PostgreSQL at {args.pg}: {exc}", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="bench-artifacts-", dir=args.tmpdir))
    info = artifacts_machine_info(venv, args.pg, work)
    need_s3 = any(SERVERS[n][1] == "s3" for n in args.servers)
    need_local = any(SERVERS[n][1] == "local" for n in args.servers)
    servers: list[Server] = []
    status: dict[str, str] = {}
    results: dict[str, list[Transfer]] = {}
    baselines: list[Baseline] = []
    moto: Moto | None = None
    t_all = time.monotonic()
    interrupted = False
    try:
        src = work / "big.bin"
        log(f"writing {args.size / MiB:.0f} MiB of random bytes to {src}")
        sha = make_file(src, args.size)

        if need_s3 or not args.no_baselines:
            moto = Moto(venv, log_dir / "artifacts-moto.log")
            if need_s3 or not args.no_baselines:
                log("starting moto")
                try:
                    moto.start()
                    log(f"   moto on {moto.endpoint}")
                except Exception as exc:  # noqa: BLE001
                    log(f"   moto FAILED: {exc}")
                    moto = None

        if not args.no_baselines:
            if need_local:
                log("baseline: local copy")
                baselines.append(baseline_copy(src, args.size, sha, work))
                log(f"   {', '.join(fmt_result(t) for t in baselines[-1].transfers)}")
            if need_s3 and moto is not None:
                log("baseline: boto3 <-> moto")
                baselines.append(baseline_boto3(moto, src, args.size, sha, work, args.interval))
                log(f"   {', '.join(fmt_result(t) for t in baselines[-1].transfers)}")

        for name in args.servers:
            srv = Server(name=name, venv=venv, pg_base=args.pg, workers=args.workers, log_dir=log_dir, work_dir=work,
                         ref_gunicorn_opts=args.ref_gunicorn_opts, startup_timeout=args.startup_timeout, moto=moto,
                         patch_chunks=args.what_if_inmem_chunks if name == WHAT_IF else 0)
            servers.append(srv)
            if srv.storage == "s3" and moto is None:
                status[name] = "not run: moto is down"
                continue
            log(f"== {name}: {srv.label} on {srv.storage} (log {srv.log_path})")
            t0 = time.monotonic()
            try:
                srv.start()
            except Exception as exc:  # noqa: BLE001
                status[name] = f"FAILED TO START: {str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__}"
                log(f"   {status[name]}")
                srv.stop()
                continue
            log(f"   up on {srv.url} after {time.monotonic() - t0:.1f}s")
            limit = args.timeout if srv.impl == "ours" else args.ref_timeout
            try:
                results[name] = run_server(srv, src, args.size, sha, limit, args.interval)
                status[name] = "ok"
            except Exception as exc:  # noqa: BLE001
                status[name] = f"benchmark error: {short_error(exc)}"
                traceback.print_exc()
            finally:
                srv.stop()
                if not args.keep_dbs:
                    try:
                        drop_db(args.pg, srv.db)
                    except Exception as exc:  # noqa: BLE001
                        srv.notes.append(f"could not drop {srv.db}: {short_error(exc)}")
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping servers")
    finally:
        for srv in servers:  # servers first: emptying their S3 prefix needs moto
            srv.stop()
        if moto is not None:
            moto.stop()
        kill_all()
        shutil.rmtree(work, ignore_errors=True)
        if interrupted and not args.keep_dbs:
            for srv in servers:
                try:
                    drop_db(args.pg, srv.db)
                except Exception:  # noqa: BLE001
                    pass
    if interrupted:
        return 130

    report = build_report(args, info, args.size, servers, status, results, baselines, moto, time.monotonic() - t_all)
    print()
    print(report)
    out = write_report(report + "\n", args.output)
    log(f"report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
