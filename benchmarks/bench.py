#!/usr/bin/env python3
"""Side-by-side benchmark: this server (Django/gunicorn) vs the reference `mlflow server`.

Each server under test gets its own fresh PostgreSQL database and its own loopback port, is started,
driven with the same raw-HTTP workload (requests.Session, keep-alive, JSON bodies shaped like the ones
the MLflow 3.x client sends), then stopped before the next one starts, so that the servers never
compete for the CPU. Results go to stdout and to benchmarks/results/latest.md.

Servers (``--servers``, default all three):

* ``ours``         ``python manage.py migrate --noinput`` then
                   ``gunicorn mlflow_sh.wsgi:application [-c mlflow_sh/gunicorn.conf.py] --workers N --bind ...``
* ``ref-uvicorn``  ``mlflow server --backend-store-uri postgresql+psycopg://... --serve-artifacts ...``
                   (MLflow's default: FastAPI app wrapping the Flask app, under uvicorn)
* ``ref-gunicorn`` the same with ``--gunicorn-opts ...``: MLflow's Flask app ``mlflow.server:app``
                   under gunicorn, as ``mlflow server`` builds that command itself.

This is a measurement tool, not a test: it never asserts on timings. Every loop is bounded (count and
per-operation time budget); only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import atexit
import concurrent.futures
import datetime as _dt
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

try:
    import psycopg
    import requests
except ImportError as exc:  # pragma: no cover - usage error
    sys.exit(f"bench.py needs requests and psycopg (run it with the project's .venv/bin/python): {exc}")

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

SERVER_NAMES = ("ours", "ref-uvicorn", "ref-gunicorn")
SERVER_LABELS = {
    "ours": "ours (Django/gunicorn)",
    "ref-uvicorn": "reference (uvicorn)",
    "ref-gunicorn": "reference (gunicorn/Flask)",
}
DB_NAMES = {"ours": "mlflow_bench_ours", "ref-uvicorn": "mlflow_bench_ref_uvicorn", "ref-gunicorn": "mlflow_bench_ref_gunicorn"}

API = "/api/2.0/mlflow"

# Operation rows of the report, in order: (key, label, higher_is_better, goal_factor)
OPS = [
    ("create_run", "create_run", False, 2.0),
    ("log_batch_10", "log_batch 10 metrics", False, 2.0),
    ("log_batch_500", "log_batch 500 metrics", False, 2.0),
    ("log_batch_1000", "log_batch 1000 metrics", False, 5.0),
    ("log_params_10", "log_batch 10 params", False, 2.0),
    ("get_history_1000", "get metric history (1000 points)", False, 2.0),
    ("search_runs_1000", "search_runs max_results=1000", False, 10.0),
    # The 10x goal names search_runs over 1000 runs; a filtered page is "every other figure" (2x).
    ("search_runs_filtered", "search_runs filter+order_by", False, 2.0),
    ("search_experiments", "search_experiments (~100)", False, 2.0),
    ("concurrent_log_batch", "8 writers: log_batch 100 metrics (median)", False, 2.0),
    ("concurrent_throughput", "8 writers: throughput (metrics/s, higher=better)", True, 2.0),
]
OP_LABELS = {k: label for k, label, _, _ in OPS}


# --------------------------------------------------------------------------------------------------
# Process management: every server runs in its own process group and is killed at exit.
# --------------------------------------------------------------------------------------------------

_LIVE_PROCS: list[subprocess.Popen] = []
_LIVE_LOCK = threading.Lock()


def _kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    if proc.poll() is not None and not _group_alive(proc.pid):
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            if not _group_alive(proc.pid):
                return
            time.sleep(0.1)
    try:
        proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_all() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE_PROCS)
        _LIVE_PROCS.clear()
    for proc in procs:
        _kill_group(proc)


def spawn(cmd: list[str], *, cwd: Path, env: dict, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "ab")
    log.write(f"\n$ {shlex.join(cmd)}\n".encode())
    log.flush()
    proc = subprocess.Popen(
        cmd, cwd=str(cwd), env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # own process group: killpg() reaches gunicorn/uvicorn workers too
    )
    log.close()
    with _LIVE_LOCK:
        _LIVE_PROCS.append(proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    _kill_group(proc)
    with _LIVE_LOCK:
        if proc in _LIVE_PROCS:
            _LIVE_PROCS.remove(proc)


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------------


def pg_uri(base: str, database: str, *, sqlalchemy: bool = False) -> str:
    parts = urlsplit(base)
    scheme = parts.scheme
    if sqlalchemy and scheme in ("postgresql", "postgres"):
        # mlflow goes through SQLAlchemy, whose default PostgreSQL driver is psycopg2 (not installed);
        # psycopg 3 must be named explicitly.
        scheme = "postgresql+psycopg"
    if not sqlalchemy and "+" in scheme:
        scheme = "postgresql"
    return urlunsplit((scheme, parts.netloc, "/" + database, parts.query, ""))


def pg_connect_admin(base: str):
    return psycopg.connect(pg_uri(base, "postgres"), autocommit=True, connect_timeout=10)


def recreate_db(base: str, name: str) -> None:
    with pg_connect_admin(base) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_db(base: str, name: str) -> None:
    with pg_connect_admin(base) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_version(base: str) -> str:
    try:
        with pg_connect_admin(base) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # noqa: BLE001
        return f"unknown ({exc.__class__.__name__})"


# --------------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    venv: Path
    pg_base: str
    workers: int
    log_dir: Path
    ref_gunicorn_opts: str
    startup_timeout: float
    port: int = 0
    proc: subprocess.Popen | None = None
    artifacts: Path | None = None
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def base_env(self) -> dict:
        env = dict(os.environ)
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env.pop("PYTHONPATH", None)
        env["PYTHONUNBUFFERED"] = "1"
        # Keep the servers quiet and free of background work that is not part of the workload.
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        env["DO_NOT_TRACK"] = "true"
        return env

    def start(self) -> None:
        """Start the server and wait for /health. Raises RuntimeError with a readable reason."""
        self.port = free_port()
        self.artifacts = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-artifacts-"))
        self.log_path.write_text("")
        db = DB_NAMES[self.name]
        recreate_db(self.pg_base, db)
        env = self.base_env()
        bin_ = self.venv / "bin"
        if self.name == "ours":
            uri = pg_uri(self.pg_base, db)
            env.update({
                "MLFLOW_BACKEND_STORE_URI": uri,
                "MLFLOW_ARTIFACTS_DESTINATION": str(self.artifacts),
                "MLFLOW_HOST": "127.0.0.1",
                "MLFLOW_PORT": str(self.port),
                "MLFLOW_WORKERS": str(self.workers),
            })
            if not (REPO / "manage.py").exists():
                raise RuntimeError(f"{REPO / 'manage.py'} does not exist (server not written yet?)")
            migrate = [str(bin_ / "python"), "manage.py", "migrate", "--noinput"]
            self.commands.append(f"MLFLOW_BACKEND_STORE_URI={uri} MLFLOW_ARTIFACTS_DESTINATION={self.artifacts} {shlex.join(migrate)}")
            mig = spawn(migrate, cwd=REPO, env=env, log_path=self.log_path)
            try:
                rc = mig.wait(timeout=600)
            finally:
                stop(mig)
            if rc != 0:
                raise RuntimeError(f"`manage.py migrate` exited with {rc}:\n{tail(self.log_path)}")
            cmd = [str(bin_ / "gunicorn"), "mlflow_sh.wsgi:application"]
            conf = REPO / "mlflow_sh" / "gunicorn.conf.py"
            if conf.exists():
                cmd += ["-c", "mlflow_sh/gunicorn.conf.py"]
            else:
                self.notes.append("mlflow_sh/gunicorn.conf.py missing: plain gunicorn arguments used")
            cmd += ["--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}"]
            cwd = REPO
        else:
            uri = pg_uri(self.pg_base, db, sqlalchemy=True)
            # Job execution (huey consumer + periodic tasks) is on by default with a SQL backend; it is
            # background work outside this workload, so it is switched off to favour the reference.
            env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
            cmd = [
                str(bin_ / "mlflow"), "server",
                "--backend-store-uri", uri,
                "--artifacts-destination", str(self.artifacts),
                "--serve-artifacts",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.workers),
            ]
            if self.name == "ref-gunicorn":
                # mlflow server then runs: python -m gunicorn <opts> -b HOST:PORT -w N mlflow.server:app
                # with _MLFLOW_SERVER_FILE_STORE, _MLFLOW_SERVER_SERVE_ARTIFACTS, ... set in the env.
                cmd += ["--gunicorn-opts", self.ref_gunicorn_opts]
            cwd = self.artifacts  # any mlruns/ or mlflow.db fallbacks land in the temp dir
        self.commands.append(
            ("MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false " if self.name != "ours" else "")
            + shlex.join(cmd)
        )
        self.proc = spawn(cmd, cwd=cwd, env=env, log_path=self.log_path)
        self._wait_health()

    def _wait_health(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} before answering:\n{tail(self.log_path)}")
            try:
                r = requests.get(self.url + "/health", timeout=5)
            except requests.RequestException as exc:
                last = exc.__class__.__name__
                time.sleep(0.25)
                continue
            if r.status_code == 200:
                return
            # The server answers HTTP but /health is not (yet) 200: it is up; note it and go on.
            self.notes.append(f"/health answered {r.status_code} (continuing anyway)")
            return
        raise RuntimeError(f"/health did not answer within {self.startup_timeout:.0f}s ({last}):\n{tail(self.log_path)}")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
        if self.artifacts is not None:
            shutil.rmtree(self.artifacts, ignore_errors=True)
            self.artifacts = None


# --------------------------------------------------------------------------------------------------
# Workload
# --------------------------------------------------------------------------------------------------


class OpError(Exception):
    pass


@dataclass
class OpResult:
    samples: list[float] = field(default_factory=list)  # ms (or metrics/s for throughput)
    errors: int = 0
    first_error: str = ""
    check: str = ""  # correctness note, e.g. "ok", "LOST 12", "WRONG RESULT ..."
    skipped: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    def pct(self, p: float) -> float | None:
        if not self.samples:
            return None
        s = sorted(self.samples)
        return s[min(len(s) - 1, int(round(p * (len(s) - 1))))]


def now_ms() -> int:
    return int(time.time() * 1000)


def describe_response(r: requests.Response) -> str:
    body = r.text[:300].replace("\n", " ")
    return f"HTTP {r.status_code} {r.request.method} {urlsplit(r.url).path}: {body}"


class Client:
    """Raw HTTP, shaped like the MLflow 3.x client (one keep-alive session per thread)."""

    def __init__(self, base: str, timeout: float):
        self.base = base
        self.timeout = timeout
        self.s = requests.Session()
        self.s.headers["User-Agent"] = "mlflow-python-client/3.17.2 (bench.py)"

    def close(self):
        self.s.close()

    def post(self, path: str, body: dict) -> requests.Response:
        # json= exactly as the MLflow client (rest_utils.call_endpoint): requests encodes the body to bytes
        # and sends it in the same write as the headers (a str body would be a second write and hit the
        # Nagle/delayed-ACK 40 ms stall on some servers).
        r = self.s.post(self.base + API + path, json=body, timeout=self.timeout)
        r.content  # noqa: B018 - read the whole body inside the timed section
        return r

    def get(self, path: str, params: dict | list) -> requests.Response:
        r = self.s.get(self.base + API + path, params=params, timeout=self.timeout)
        r.content  # noqa: B018
        return r

    def ok_json(self, r: requests.Response) -> dict:
        if r.status_code != 200:
            raise OpError(describe_response(r))
        try:
            return r.json()
        except ValueError:
            raise OpError(f"non-JSON 200 answer: {r.text[:200]!r}") from None

    # --- API helpers (untimed use) ---
    def create_experiment(self, name: str) -> str:
        return str(self.ok_json(self.post("/experiments/create", {"name": name}))["experiment_id"])

    def create_run(self, exp_id: str, name: str) -> str:
        return self.ok_json(self.post("/runs/create", run_create_body(exp_id, name)))["run"]["info"]["run_id"]

    def metric_history(self, run_id: str, key: str, max_pages: int = 50) -> list[dict]:
        out: list[dict] = []
        token = None
        for _ in range(max_pages):  # bounded pagination
            params = {"run_uuid": run_id, "metric_key": key, "run_id": run_id, "max_results": 25000}
            if token:
                params["page_token"] = token
            data = self.ok_json(self.get("/metrics/get-history", params))
            out.extend(data.get("metrics", []))
            token = data.get("next_page_token")
            if not token:
                break
        return out


def run_create_body(exp_id: str, name: str) -> dict:
    return {
        "experiment_id": exp_id,
        "user_id": "bench",
        "run_name": name,
        "start_time": now_ms(),
        "tags": [
            {"key": "mlflow.user", "value": "bench"},
            {"key": "mlflow.source.name", "value": "bench.py"},
            {"key": "mlflow.source.type", "value": "LOCAL"},
            {"key": "mlflow.runName", "value": name},
        ],
    }


def metrics_body(run_id: str, keys: list[str], step: int, rng: random.Random, ts: int | None = None) -> list[dict]:
    ts = ts if ts is not None else now_ms()
    return [{"key": k, "value": rng.random(), "timestamp": ts, "step": step, "run_id": run_id} for k in keys]


@dataclass
class Settings:
    repeat: int
    repeat_heavy: int
    warmup: int
    runs: int
    experiments: int
    writers: int
    conc_batches: int
    conc_batch_size: int
    max_op_seconds: float
    seed_threads: int
    timeout: float


def seed_rows(n_runs: int) -> list[dict]:
    """Deterministic seed data: identical on every server."""
    rng = random.Random(20261126)
    rows = []
    for i in range(n_runs):
        rows.append({
            "name": f"seed-{i:05d}",
            "metrics": {f"m{j}": round(rng.random(), 6) for j in range(10)},
            "params": {f"p{j}": f"v{rng.randrange(5)}" for j in range(5)},
            "tags": {f"t{j}": f"tag-{rng.randrange(10)}" for j in range(5)},
        })
    return rows


def timed(res: OpResult, fn, n: int, warmup: int, budget: float) -> None:
    """Call fn(i) warmup+n times (untimed warmup), bounded by a time budget (at least 3 samples)."""
    for i in range(warmup):
        try:
            fn(-1 - i)
        except Exception:  # noqa: BLE001 - warmup failures show up in the measured calls
            pass
    start = time.monotonic()
    for i in range(n):
        if i >= 3 and time.monotonic() - start > budget:
            break
        t0 = time.perf_counter()
        try:
            fn(i)
        except (OpError, requests.RequestException, KeyError, ValueError, TypeError) as exc:
            res.errors += 1
            if not res.first_error:
                res.first_error = f"{exc.__class__.__name__}: {exc}"[:400]
            continue
        res.samples.append((time.perf_counter() - t0) * 1000.0)


def run_workload(srv: Server, cfg: Settings, log) -> dict[str, OpResult]:
    results: dict[str, OpResult] = {k: OpResult() for k, *_ in OPS}
    c = Client(srv.url, cfg.timeout)
    rng = random.Random(7)

    def skip_all(reason: str, keys=None):
        for k in keys or results:
            if not results[k].samples and not results[k].errors and not results[k].skipped:
                results[k].skipped = reason

    # --- warm every worker (each one imports lazily / opens its DB connection on first use) ---
    def warm(_):
        wc = Client(srv.url, cfg.timeout)
        try:
            for _ in range(3):
                wc.get("/experiments/search", {"max_results": 10})
                wc.s.get(srv.url + "/health", timeout=cfg.timeout)
        except requests.RequestException:
            pass
        finally:
            wc.close()

    with concurrent.futures.ThreadPoolExecutor(srv.workers * 2) as ex:
        list(ex.map(warm, range(srv.workers * 2)))

    # --- set-up: one experiment for the single-op measurements ---
    try:
        exp_id = c.create_experiment("bench-ops")
    except Exception as exc:  # noqa: BLE001
        skip_all(f"set-up failed (create experiment): {exc}"[:400])
        c.close()
        return results

    def op(key: str, fn, n: int):
        log(f"  {OP_LABELS[key]} ...")
        try:
            timed(results[key], fn, n, cfg.warmup, cfg.max_op_seconds)
        except Exception as exc:  # noqa: BLE001
            results[key].errors += 1
            results[key].first_error = results[key].first_error or f"{exc.__class__.__name__}: {exc}"[:400]

    # create_run
    op("create_run", lambda i: c.create_run(exp_id, f"cr-{i}"), cfg.repeat)

    # log_batch N metrics: one run per size, a new step per call, keys k0..kN-1
    for size, key, n in ((10, "log_batch_10", cfg.repeat), (500, "log_batch_500", cfg.repeat_heavy), (1000, "log_batch_1000", cfg.repeat_heavy)):
        try:
            run_id = c.create_run(exp_id, f"lb-{size}")
        except Exception as exc:  # noqa: BLE001
            results[key].skipped = f"set-up failed (create run): {exc}"[:400]
            continue
        keys = [f"k{j}" for j in range(size)]

        def lb(i, run_id=run_id, keys=keys):
            body = {"run_id": run_id, "metrics": metrics_body(run_id, keys, i + 1000, rng)}
            c.ok_json(c.post("/runs/log-batch", body))

        op(key, lb, n)

    # log 10 params (log_batch with params only), fresh keys each call
    try:
        prun = c.create_run(exp_id, "params")

        def lp(i):
            body = {"run_id": prun, "params": [{"key": f"p{i + 100}_{j}", "value": f"value-{j}"} for j in range(10)]}
            c.ok_json(c.post("/runs/log-batch", body))

        op("log_params_10", lp, cfg.repeat)
    except Exception as exc:  # noqa: BLE001
        results["log_params_10"].skipped = f"set-up failed: {exc}"[:400]

    # metric history of a 1000-point metric
    try:
        hrun = c.create_run(exp_id, "history")
        ts = now_ms()
        for chunk in range(2):  # 2 x 500 points: under the 1000-entity log-batch limit
            body = {"run_id": hrun, "metrics": [
                {"key": "loss", "value": 1.0 / (s + 1), "timestamp": ts + s, "step": s, "run_id": hrun}
                for s in range(chunk * 500, chunk * 500 + 500)]}
            c.ok_json(c.post("/runs/log-batch", body))
        got = len(c.metric_history(hrun, "loss"))
        results["get_history_1000"].check = "ok" if got == 1000 else f"WRONG: {got} points, expected 1000"

        def gh(_):
            c.ok_json(c.get("/metrics/get-history", {"run_uuid": hrun, "metric_key": "loss", "run_id": hrun, "max_results": 25000}))

        op("get_history_1000", gh, cfg.repeat)
    except Exception as exc:  # noqa: BLE001
        results["get_history_1000"].skipped = f"set-up failed: {exc}"[:400]

    # --- seeding: experiments and the search experiment (identical data on every server) ---
    log(f"  seeding {cfg.experiments} experiments and {cfg.runs} runs ...")
    t_seed = time.monotonic()
    seed_error = None
    try:
        for i in range(cfg.experiments):
            c.create_experiment(f"bench-exp-{i:03d}")
        search_exp = c.create_experiment("bench-search")
        rows = seed_rows(cfg.runs)
        lock = threading.Lock()
        clients: dict[int, Client] = {}

        def seed_one(row):
            tid = threading.get_ident()
            with lock:
                sc = clients.setdefault(tid, Client(srv.url, cfg.timeout))
            rid = sc.create_run(search_exp, row["name"])
            body = {
                "run_id": rid,
                "metrics": [{"key": k, "value": v, "timestamp": now_ms(), "step": 0, "run_id": rid} for k, v in row["metrics"].items()],
                "params": [{"key": k, "value": v} for k, v in row["params"].items()],
                "tags": [{"key": k, "value": v} for k, v in row["tags"].items()],
            }
            sc.ok_json(sc.post("/runs/log-batch", body))

        ex = concurrent.futures.ThreadPoolExecutor(cfg.seed_threads)
        try:
            futs = [ex.submit(seed_one, row) for row in rows]
            for f in concurrent.futures.as_completed(futs):
                exc = f.exception()
                if exc is not None and seed_error is None:
                    seed_error = exc
                    for other in futs:
                        other.cancel()
        finally:
            # on error or Ctrl-C, drop the queued rows instead of seeding them all first
            ex.shutdown(wait=True, cancel_futures=True)
        for sc in clients.values():
            sc.close()
        if seed_error is not None:
            raise seed_error
    except Exception as exc:  # noqa: BLE001
        skip_all(f"seeding failed: {exc}"[:400], ["search_runs_1000", "search_runs_filtered", "search_experiments"])
        search_exp = None
    log(f"  seeding took {time.monotonic() - t_seed:.1f}s")

    if search_exp is not None:
        expected_filtered = sorted(
            (r for r in rows if r["metrics"]["m0"] > 0.5 and r["params"]["p0"] == "v1"),
            key=lambda r: -r["metrics"]["m1"],
        )
        plain = {"experiment_ids": [search_exp], "filter": "", "run_view_type": "ACTIVE_ONLY", "max_results": 1000}
        filtered = {
            "experiment_ids": [search_exp], "filter": "metrics.m0 > 0.5 and params.p0 = 'v1'",
            "run_view_type": "ACTIVE_ONLY", "max_results": 1000, "order_by": ["metrics.m1 DESC"],
        }
        try:
            data = c.ok_json(c.post("/runs/search", plain))
            runs = data.get("runs", [])
            want = min(1000, cfg.runs)
            ok = len(runs) == want and all(
                len(r.get("data", {}).get("metrics", [])) == 10 and len(r.get("data", {}).get("params", [])) == 5
                for r in runs)
            results["search_runs_1000"].check = "ok" if ok else f"WRONG: {len(runs)} runs (want {want}) or missing data"
        except Exception as exc:  # noqa: BLE001
            results["search_runs_1000"].check = f"check failed: {exc}"[:300]
        try:
            data = c.ok_json(c.post("/runs/search", filtered))
            names = [r["info"].get("run_name") for r in data.get("runs", [])]
            want_names = [r["name"] for r in expected_filtered[:1000]]
            results["search_runs_filtered"].check = (
                f"ok ({len(names)} runs)" if names == want_names
                else f"WRONG: {len(names)} runs, expected {len(want_names)} in metrics.m1 DESC order")
        except Exception as exc:  # noqa: BLE001
            results["search_runs_filtered"].check = f"check failed: {exc}"[:300]
        op("search_runs_1000", lambda _: c.ok_json(c.post("/runs/search", plain)), cfg.repeat_heavy)
        op("search_runs_filtered", lambda _: c.ok_json(c.post("/runs/search", filtered)), cfg.repeat_heavy)

        body = {"max_results": 1000, "view_type": "ACTIVE_ONLY"}
        try:
            n_exp = len(c.ok_json(c.post("/experiments/search", body)).get("experiments", []))
            want = cfg.experiments + 3  # Default, bench-ops, bench-search
            results["search_experiments"].check = "ok" if n_exp == want else f"WRONG: {n_exp} experiments, expected {want}"
        except Exception as exc:  # noqa: BLE001
            results["search_experiments"].check = f"check failed: {exc}"[:300]
        op("search_experiments", lambda _: c.ok_json(c.post("/experiments/search", body)), cfg.repeat)

    # --- concurrent writers ---
    log(f"  {cfg.writers} concurrent writers x {cfg.conc_batches} batches of {cfg.conc_batch_size} metrics ...")
    concurrent_writers(srv, cfg, c, exp_id, results)
    c.close()
    return results


def concurrent_writers(srv: Server, cfg: Settings, c: Client, exp_id: str, results: dict[str, OpResult]) -> None:
    lat, thr = results["concurrent_log_batch"], results["concurrent_throughput"]
    try:
        run_ids = [c.create_run(exp_id, f"conc-{j}") for j in range(2)]
    except Exception as exc:  # noqa: BLE001
        lat.skipped = thr.skipped = f"set-up failed (create run): {exc}"[:400]
        return
    n_keys = 10
    per_key = max(1, cfg.conc_batch_size // n_keys)
    # acknowledged[(run, key)] = number of points the server answered 200 for
    acknowledged: dict[tuple[str, str], int] = {}
    lock = threading.Lock()
    started: list[float] = []
    barrier = threading.Barrier(cfg.writers, action=lambda: started.append(time.perf_counter()))

    def writer(w: int) -> tuple[list[float], int, str]:
        wc = Client(srv.url, cfg.timeout)
        rid = run_ids[w % len(run_ids)]
        rng = random.Random(w)
        samples, errors, first = [], 0, ""
        try:
            wc.s.get(srv.url + "/health", timeout=cfg.timeout)  # open the keep-alive connection
        except requests.RequestException:
            pass
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass
        for b in range(cfg.conc_batches):
            ts = now_ms()
            metrics = []
            for s in range(per_key):
                step = ((w * cfg.conc_batches + b) * per_key) + s  # unique per (run, key)
                metrics += [{"key": f"c{k}", "value": rng.random(), "timestamp": ts, "step": step, "run_id": rid} for k in range(n_keys)]
            t0 = time.perf_counter()
            try:
                wc.ok_json(wc.post("/runs/log-batch", {"run_id": rid, "metrics": metrics}))
            except (OpError, requests.RequestException) as exc:
                errors += 1
                first = first or f"{exc.__class__.__name__}: {exc}"[:400]
                continue
            samples.append((time.perf_counter() - t0) * 1000.0)
            with lock:
                for k in range(n_keys):
                    acknowledged[(rid, f"c{k}")] = acknowledged.get((rid, f"c{k}"), 0) + per_key
        wc.close()
        return samples, errors, first

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(cfg.writers) as ex:
        outs = list(ex.map(writer, range(cfg.writers)))
    wall = time.perf_counter() - (started[0] if started else t0)  # from the barrier release
    for samples, errors, first in outs:
        lat.samples += samples
        lat.errors += errors
        lat.first_error = lat.first_error or first
    total_ok = len(lat.samples) * per_key * n_keys
    if total_ok:
        thr.samples = [total_ok / wall]
    thr.errors = lat.errors
    thr.first_error = lat.first_error

    # exact count check through metrics/get-history
    lost, extra, check_err = 0, 0, ""
    for rid in run_ids:
        for k in range(n_keys):
            key = f"c{k}"
            want = acknowledged.get((rid, key), 0)
            try:
                got = c.metric_history(rid, key)
            except Exception as exc:  # noqa: BLE001
                check_err = f"history check failed: {exc}"[:300]
                break
            steps = {m.get("step") for m in got}
            lost += max(0, want - len(steps))
            extra += max(0, len(got) - want)
    if check_err:
        verdict = check_err
    elif lost:
        verdict = f"LOST {lost} acknowledged points"
    elif lat.errors:
        verdict = f"ok (no acknowledged point lost; {lat.errors} requests failed)"
    else:
        verdict = "ok"
    if extra and not check_err:
        verdict += f"; {extra} unexpected extra points"
    lat.check = verdict
    thr.check = f"{total_ok} metrics in {wall:.2f}s"


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def machine_info(venv: Path, pg_base: str) -> list[tuple[str, str]]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:
        ncpu = os.cpu_count() or 0
    vers = sh([str(venv / "bin" / "python"), "-c",
               "import importlib.metadata as m\n"
               "for p in ('mlflow','django','gunicorn','uvicorn','flask','sqlalchemy','psycopg'):\n"
               "    try: print(p, m.version(p))\n"
               "    except Exception: print(p, '?')"])
    versions = ", ".join(" ".join(l.split()) for l in vers.splitlines()) or "unknown"
    return [
        ("date", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("nproc", str(ncpu)),
        ("CPU", cpu or platform.processor() or "unknown"),
        ("memory", mem or "unknown"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", sh([str(venv / "bin" / "python"), "-c", "import sys; print(sys.version.split()[0])"]) or "?"),
        ("versions", versions),
        ("PostgreSQL", pg_version(pg_base)),
    ]


def fmt_cell(key: str, res: OpResult | None, higher_better: bool) -> str:
    if res is None:
        return "—"
    if res.skipped and not res.samples:
        return "skipped"
    if not res.samples:
        return f"ERR ({res.errors})" if res.errors else "—"
    v = res.median
    s = f"{v:,.0f}" if higher_better else (f"{v:.1f}" if v < 100 else f"{v:,.0f}")
    if res.errors:
        s += f" ({res.errors} err)"
    return s


def build_report(args, info, servers: dict[str, Server], status: dict[str, str], results: dict[str, dict[str, OpResult]], cfg: Settings) -> str:
    out = []
    out.append("## Benchmark: mlflow-sharinghub vs reference `mlflow server`\n")
    out.append("| | |\n|---|---|")
    for k, v in info:
        out.append(f"| {k} | {v} |")
    out.append(f"| workload | {cfg.runs} runs (10 metrics, 5 params, 5 tags each) + {cfg.experiments} experiments; "
               f"repeat {cfg.repeat} (heavy ops {cfg.repeat_heavy}), warmup {cfg.warmup}, per-op budget {cfg.max_op_seconds:.0f}s; "
               f"{cfg.writers} writers x {cfg.conc_batches} batches; {args.workers} workers per server"
               f"{'; --quick' if args.quick else ''} |")
    out.append("")
    out.append("Median latency in ms (lower is better) unless stated. ratio = faster reference / ours "
               "(>1: ours is faster); for throughput, ours / faster reference.\n")
    hdr = ["operation", "ours", "reference (uvicorn)", "reference (gunicorn/Flask)", "ratio", "goal", "met"]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|" + "|".join(["---"] + ["---:"] * 4 + ["---:", ":---:"]) + "|")
    for key, label, higher, goal in OPS:
        cells = [label]
        meds = {}
        for name in SERVER_NAMES:
            res = results.get(name, {}).get(key)
            if name not in servers:
                cells.append("not run")
                continue
            if status.get(name, "ok") != "ok":
                cells.append("DOWN")
                continue
            cells.append(fmt_cell(key, res, higher))
            if res is not None and res.samples:
                meds[name] = res.median
        refs = [meds[n] for n in ("ref-uvicorn", "ref-gunicorn") if n in meds]
        if "ours" in meds and refs and meds["ours"] > 0:
            if higher:
                ratio = meds["ours"] / max(refs)
            else:
                ratio = min(refs) / meds["ours"]
            ours_res = results["ours"][key]
            clean = ours_res.errors == 0 and not ours_res.check.startswith(("WRONG", "LOST"))
            cells += [f"{ratio:.2f}×", f"≥{goal:g}×", ("yes" if ratio >= goal else "no") if clean else "no (errors)"]
        else:
            cells += ["n/a", f"≥{goal:g}×", "n/a"]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    # server status and correctness checks
    out.append("### Servers\n")
    for name in SERVER_NAMES:
        if name not in servers:
            continue
        srv = servers[name]
        out.append(f"* **{SERVER_LABELS[name]}**: {status.get(name, 'not run')}")
        for cmd in srv.commands:
            out.append(f"  * `{cmd}`")
        for note in srv.notes:
            out.append(f"  * note: {note}")
    out.append("")
    out.append("### Checks and errors\n")
    out.append("| operation | " + " | ".join(SERVER_LABELS[n] for n in SERVER_NAMES if n in servers) + " |")
    out.append("|---|" + "---|" * len([n for n in SERVER_NAMES if n in servers]))
    for key, label, higher, _ in OPS:
        row = [label]
        any_note = False
        for name in SERVER_NAMES:
            if name not in servers:
                continue
            res = results.get(name, {}).get(key)
            bits = []
            if res is not None:
                if res.samples and not higher:
                    bits.append(f"n={len(res.samples)} p90={res.pct(0.9):.1f}")
                if res.check:
                    bits.append(res.check)
                if res.skipped:
                    bits.append(res.skipped)
                if res.errors:
                    bits.append(f"{res.errors} errors, first: {res.first_error}")
            text = "; ".join(bits).replace("|", "\\|").replace("\n", " ")
            any_note = any_note or bool(text)
            row.append(text or "—")
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Benchmark this server against the reference `mlflow server` (uvicorn and gunicorn/Flask), "
                    "each on a fresh PostgreSQL database, with the same raw-HTTP workload.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--pg", default=os.environ.get("BENCH_PG_URI", "postgresql://postgres@127.0.0.1:5432"),
                   help="PostgreSQL server URI base (env BENCH_PG_URI); databases "
                        + ", ".join(DB_NAMES.values()) + " are dropped and re-created on it")
    p.add_argument("--servers", default=",".join(SERVER_NAMES), help="comma-separated subset of " + ", ".join(SERVER_NAMES))
    p.add_argument("--workers", type=int, default=4, help="worker processes per server")
    p.add_argument("--quick", action="store_true", help="~1 minute smoke run (small data, few repetitions)")
    p.add_argument("--repeat", type=int, default=None, help="measured calls per cheap operation (default 60, quick 10)")
    p.add_argument("--repeat-heavy", type=int, default=None,
                   help="measured calls for log_batch 500/1000 and search_runs (default 15, quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls before each operation (default 3, quick 1)")
    p.add_argument("--runs", type=int, default=None, help="runs in the search experiment (default 2000, quick 300)")
    p.add_argument("--experiments", type=int, default=None, help="extra experiments for search_experiments (default 100)")
    p.add_argument("--writers", type=int, default=8, help="concurrent writer threads")
    p.add_argument("--conc-batches", type=int, default=None, help="log_batch calls per writer (default 25, quick 5)")
    p.add_argument("--conc-batch-size", type=int, default=100, help="metrics per concurrent log_batch (multiple of 10)")
    p.add_argument("--max-op-seconds", type=float, default=None,
                   help="time budget per measured operation; stops early after at least 3 samples (default 40, quick 8)")
    p.add_argument("--seed-threads", type=int, default=4, help="threads used to seed the search experiment")
    p.add_argument("--timeout", type=float, default=120.0, help="HTTP timeout per request (s)")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for /health")
    p.add_argument("--ref-gunicorn-opts", default="--log-level warning",
                   help="--gunicorn-opts passed to `mlflow server` for the gunicorn/Flask reference")
    p.add_argument("--venv", default=str(REPO / ".venv"), help="virtualenv with gunicorn, mlflow, django")
    p.add_argument("--output", default=str(RESULTS_DIR / "latest.md"), help="Markdown report path")
    p.add_argument("--keep-dbs", action="store_true", help="keep the benchmark databases afterwards")
    args = p.parse_args(argv)
    q = args.quick
    d = lambda v, full, quick: v if v is not None else (quick if q else full)  # noqa: E731
    cfg = Settings(
        repeat=max(1, d(args.repeat, 60, 10)),
        repeat_heavy=max(1, d(args.repeat_heavy, 15, 3)),
        warmup=max(0, d(args.warmup, 3, 1)),
        runs=max(1, d(args.runs, 2000, 300)),
        experiments=max(0, d(args.experiments, 100, 100)),
        writers=max(1, args.writers),
        conc_batches=max(1, d(args.conc_batches, 25, 5)),
        conc_batch_size=max(10, min(1000, args.conc_batch_size)),
        max_op_seconds=d(args.max_op_seconds, 40.0, 8.0),
        seed_threads=max(1, args.seed_threads),
        timeout=args.timeout,
    )
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    bad = [n for n in names if n not in SERVER_NAMES]
    if bad:
        p.error(f"unknown server(s) {bad}; choose from {', '.join(SERVER_NAMES)}")
    args.server_list = names
    return args, cfg


def main(argv=None) -> int:
    args, cfg = parse_args(argv)
    venv = Path(args.venv)
    for exe in ("python", "gunicorn", "mlflow"):
        if not (venv / "bin" / exe).exists():
            print(f"warning: {venv / 'bin' / exe} not found", file=sys.stderr)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    atexit.register(kill_all)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    try:
        with pg_connect_admin(args.pg):
            pass
    except Exception as exc:  # noqa: BLE001
        print(f"cannot connect to PostgreSQL at {args.pg}: {exc}", file=sys.stderr)
        return 2

    info = machine_info(venv, args.pg)
    servers: dict[str, Server] = {}
    status: dict[str, str] = {}
    results: dict[str, dict[str, OpResult]] = {}
    t_all = time.monotonic()
    try:
        for name in args.server_list:
            srv = Server(name=name, venv=venv, pg_base=args.pg, workers=args.workers, log_dir=log_dir,
                         ref_gunicorn_opts=args.ref_gunicorn_opts, startup_timeout=args.startup_timeout)
            servers[name] = srv
            log(f"== {SERVER_LABELS[name]}: starting (log: {srv.log_path})")
            t0 = time.monotonic()
            try:
                srv.start()
            except Exception as exc:  # noqa: BLE001
                status[name] = f"FAILED TO START: {str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__}"
                log(f"   FAILED TO START: {exc}")
                srv.stop()
                continue
            log(f"   up on {srv.url} after {time.monotonic() - t0:.1f}s")
            status[name] = "ok"
            try:
                results[name] = run_workload(srv, cfg, log)
            except Exception as exc:  # noqa: BLE001
                status[name] = f"workload crashed: {exc.__class__.__name__}: {exc}"
                traceback.print_exc()
            finally:
                if srv.proc is not None and srv.proc.poll() is not None:
                    srv.notes.append(f"server process had exited with {srv.proc.returncode} by the end; see {srv.log_path}")
                srv.stop()
                log(f"   {name} done")
    except KeyboardInterrupt:
        log("interrupted: stopping servers")
        kill_all()
        for srv in servers.values():
            srv.stop()
        return 130
    finally:
        kill_all()
        if not args.keep_dbs:
            for name in servers:
                try:
                    drop_db(args.pg, DB_NAMES[name])
                except Exception as exc:  # noqa: BLE001
                    print(f"could not drop {DB_NAMES[name]}: {exc}", file=sys.stderr)

    info.append(("total wall time", f"{time.monotonic() - t_all:.0f}s"))
    report = build_report(args, info, servers, status, results, cfg)
    print()
    print(report)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + "\n")
    log(f"report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
