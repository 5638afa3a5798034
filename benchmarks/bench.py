#!/usr/bin/env python3
"""Side-by-side benchmark: this server (Django/gunicorn) vs the reference `mlflow server`.

Each server under test gets its own fresh PostgreSQL database and its own loopback port; all are started,
then driven with the same raw-HTTP workload (requests.Session, keep-alive, JSON bodies shaped like the ones
the MLflow 3.x client sends), each from a thread of its own. The threads take turns (a Baton): one works
at a time, so the servers never compete for the CPU, and each hands over to the next after every measured
call, so a slow phase of a shared machine falls on every server alike instead of on whichever ran then.
Results go to stdout and to benchmarks/results/latest.md.

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
import concurrent.futures
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

try:
    import psycopg
    import requests
except ImportError as exc:  # pragma: no cover - usage error
    sys.exit(f"bench.py needs requests and psycopg (run it with the project's .venv/bin/python): {exc}")

from common import (REPO, RESULTS_DIR, drop_db, free_port, kill_all, kill_children_on_exit, live_process_groups,
                    machine_info, markdown_row, pg_exec, pg_uri, recreate_db, run_to_end, spawn, stop, tail, venv_env,
                    wait_for_health, write_report)

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
    # information only: what any call costs on this machine (client, HTTP, server framework), the floor under
    # every small call's latency; a small call's ratio cannot exceed the reference's latency over this floor
    ("http_floor", "GET /health, the per-call floor (information)", False, None),
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
    # model registry, over --registry-models x --registry-versions seeded versions (10,000 by default)
    ("search_rm_100", "search_registered_models max_results=100", False, 5.0),
    ("search_rm_1000", "search_registered_models max_results=1000", False, 5.0),
    # One model's 10 versions: a small call, held to the small calls' 2x. The issue's 5x is for the searches over
    # the 10,000 versions (the rows around it); a call this small cannot get near 5x here, as the ceiling table of
    # the report shows (the reference's latency over our /health floor).
    ("search_mv_name", "search_model_versions name='<model>'", False, 2.0),
    ("search_mv_all", "search_model_versions all (max_results=10000)", False, 5.0),
    ("get_rm", "get_registered_model", False, 2.0),
    ("get_alias", "get_model_version_by_alias", False, 2.0),
    # information only (goal None): set-up time, not a measured operation
    ("registry_seeding", "registry seeding, set-up (s, information)", False, None),
]
OP_LABELS = {k: label for k, label, _, _ in OPS}
OPS_GOALS = {k: goal for k, _, _, goal in OPS}
REGISTRY_KEYS = ["search_rm_100", "search_rm_1000", "search_mv_name", "search_mv_all", "get_rm", "get_alias"]
# the filter the MLflow 3.x client adds to every search_registered_models call (prompts are hidden)
PROMPT_FILTER = "tag.`mlflow.prompt.is_prompt` != 'true'"


class CpuWatch:
    """Samples /proc every few seconds: CPU seconds used by this script and its servers, by PostgreSQL, and
    by anything else. Other work on a shared machine slows every figure; the report says how much there was.
    Linux only (elsewhere it reports nothing); processes that live less than one interval are missed."""

    def __init__(self, interval: float = 2.0):
        self.interval = interval
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.seen: dict[int, tuple[str, float]] = {}  # pid -> (group, cpu seconds at the last sample)
        self.used: dict[str, float] = {}
        self.other_by_cmd: dict[str, float] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="cpu-watch")
        self.t0 = time.monotonic()

    def _group(self, pid: int, comm: str) -> tuple[str, str]:
        ours = live_process_groups()
        try:
            pgid = os.getpgid(pid)
        except OSError:
            pgid = -1
        if pid == os.getpid() or pgid in ours or pgid == os.getpgid(0):
            return "bench", ""
        if comm in ("postgres", "postmaster"):
            return "postgres", ""
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = ""
        return "other", (cmd or comm)[:70]

    def _sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                raw = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            comm = raw[raw.find("(") + 1:raw.rfind(")")]
            fields = raw[raw.rfind(")") + 2:].split()
            cpu = (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime
            if pid not in self.seen:
                group, cmd = self._group(pid, comm)
                self.seen[pid] = (group + "\0" + cmd, cpu)  # first sight: counted from here on
                continue
            key, last = self.seen[pid]
            self.seen[pid] = (key, cpu)
            group, cmd = key.split("\0", 1)
            self.used[group] = self.used.get(group, 0.0) + max(0.0, cpu - last)
            if group == "other" and cpu > last:
                self.other_by_cmd[cmd] = self.other_by_cmd.get(cmd, 0.0) + cpu - last

    def _run(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self._sample()
            except Exception:  # noqa: BLE001 - information only
                pass

    def start(self) -> None:
        if Path("/proc/self/stat").exists():
            self._sample()
            self.thread.start()

    def stop(self) -> str:
        if not self.thread.is_alive():
            return "not measured"
        self.stop_event.set()
        self.thread.join(timeout=10)
        self._sample()
        wall = time.monotonic() - self.t0
        other = self.used.get("other", 0.0)
        top = sorted(self.other_by_cmd.items(), key=lambda kv: -kv[1])[:3]
        text = (f"bench + servers {self.used.get('bench', 0.0):.0f}s, PostgreSQL {self.used.get('postgres', 0.0):.0f}s, "
                f"other processes {other:.0f}s (wall {wall:.0f}s; sampled every {self.interval:g}s)")
        if other > 0.05 * wall:
            text += ". Other work competed for the CPU, so the figures are slower than on a quiet machine: " + ", ".join(
                f"`{cmd}` {sec:.0f}s" for cmd, sec in top)
        return text.replace("|", "\\|")


# --------------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------------


def analyze_db(srv: "Server", cfg: "Settings", log) -> None:
    """ANALYZE the server's database after seeding (--analyze), as autovacuum would do in time."""
    if not cfg.analyze:
        return
    t0 = time.monotonic()
    try:
        with psycopg.connect(pg_uri(srv.pg_base, DB_NAMES[srv.name]), autocommit=True, connect_timeout=10) as conn:
            conn.execute("ANALYZE")
        log(f"  ANALYZE took {time.monotonic() - t0:.1f}s")
    except Exception as exc:  # noqa: BLE001
        srv.notes.append(f"ANALYZE failed: {exc}"[:300])


def pg_version(base: str) -> str:
    try:
        version = pg_exec(base, "SHOW server_version")
        # With autovacuum off, freshly seeded tables are never ANALYZEd and every server plans its
        # queries without statistics (see --analyze).
        autovacuum = pg_exec(base, "SHOW autovacuum")
        return f"{version}; autovacuum {autovacuum}"
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

    def start(self) -> None:
        """Start the server and wait for /health. Raises RuntimeError with a readable reason."""
        self.port = free_port()
        self.artifacts = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-artifacts-"))
        self.log_path.write_text("")
        db = DB_NAMES[self.name]
        recreate_db(self.pg_base, db)
        env = venv_env(self.venv)
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
            rc = run_to_end(migrate, cwd=REPO, env=env, log_path=self.log_path)
            if rc != 0:
                raise RuntimeError(f"`manage.py migrate` exited with {rc}:\n{tail(self.log_path, 25)}")
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
        status = wait_for_health(self.url, self.proc, self.startup_timeout, self.log_path, until_ok=False)
        if status != 200:
            # The server answers HTTP but /health is not (yet) 200: it is up; note it and go on.
            self.notes.append(f"/health answered {status} (continuing anyway)")

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
    registry_models: int = 1000
    registry_versions: int = 10
    registry_seed_threads: int = 8
    workloads: tuple[str, ...] = ("tracking", "registry")
    analyze: bool = False


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


class Baton:
    """Turns between the servers' workload threads: a thread works only while it holds the baton, and hands it
    to the next server after each measured call (then waits for its turn again)."""

    def __init__(self, names: list[str]):
        self._turn = threading.Condition()
        self._ring = list(names)
        self._holder = self._ring[0] if self._ring else None

    def take(self, name: str) -> None:
        with self._turn:
            self._turn.wait_for(lambda: self._holder == name)

    def pass_on(self, name: str) -> None:
        with self._turn:
            self._holder = self._ring[(self._ring.index(name) + 1) % len(self._ring)]
            self._turn.notify_all()
            self._turn.wait_for(lambda: self._holder == name)

    def leave(self, name: str) -> None:
        with self._turn:
            index = self._ring.index(name)
            self._ring.remove(name)
            if self._holder == name:
                self._holder = self._ring[index % len(self._ring)] if self._ring else None
            self._turn.notify_all()


_turns = threading.local()  # the baton and server name of a workload thread (none: nothing to hand over)


def hand_over() -> None:
    baton = getattr(_turns, "baton", None)
    if baton is not None:
        baton.pass_on(_turns.name)


def timed(res: OpResult, fn, n: int, warmup: int, budget: float) -> None:
    """Call fn(i) warmup+n times (untimed warmup), bounded by a budget of this server's own time (at least 3
    samples); the other servers take their turn after each measured call."""
    for i in range(warmup):
        try:
            fn(-1 - i)
        except Exception:  # noqa: BLE001 - warmup failures show up in the measured calls
            pass
    spent = 0.0
    for i in range(n):
        if i >= 3 and spent > budget:
            break
        t0 = time.perf_counter()
        error = None
        try:
            fn(i)
        except (OpError, requests.RequestException, KeyError, ValueError, TypeError) as exc:
            error = exc
        elapsed = time.perf_counter() - t0
        spent += elapsed
        hand_over()
        if error is None:
            res.samples.append(elapsed * 1000.0)
        else:
            res.errors += 1
            res.first_error = res.first_error or f"{error.__class__.__name__}: {error}"[:400]


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

    def op(key: str, fn, n: int, warmup: int | None = None):
        log(f"  {OP_LABELS[key]} ...")
        try:
            timed(results[key], fn, n, cfg.warmup if warmup is None else warmup, cfg.max_op_seconds)
        except Exception as exc:  # noqa: BLE001
            results[key].errors += 1
            results[key].first_error = results[key].first_error or f"{exc.__class__.__name__}: {exc}"[:400]

    def health(_):
        r = c.s.get(c.base + "/health", timeout=c.timeout)
        r.raise_for_status()

    op("http_floor", health, cfg.repeat)

    if "tracking" in cfg.workloads:
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
        analyze_db(srv, cfg, log)

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
        log(f"  {cfg.writers} concurrent writers x {cfg.conc_batches} batches of {cfg.conc_batch_size} metrics, {CONCURRENT_ROUNDS} rounds ...")
        concurrent_writers(srv, cfg, c, exp_id, results)
    else:
        skip_all("tracking workload off (--workloads)", [k for k, *_ in OPS if k not in REGISTRY_KEYS and k not in ("registry_seeding", "http_floor")])

    # --- model registry (seeded last: the rows above run on the same data on every server) ---
    if "registry" in cfg.workloads and cfg.registry_models > 0:
        registry_workload(srv, cfg, c, exp_id, results, op, log)
    else:
        skip_all("registry workload off (--workloads or --registry-models 0)", REGISTRY_KEYS + ["registry_seeding"])
    c.close()
    return results


CONCURRENT_ROUNDS = 3  # the throughput is the median of the rounds; the other servers take a turn between them


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
    rounds: list[str] = []

    def one_round(round_: int) -> None:
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
                    # unique per (run, key) across writers, batches and rounds
                    step = (((round_ * cfg.writers + w) * cfg.conc_batches + b) * per_key) + s
                    metrics += [{"key": f"c{k}", "value": rng.random(), "timestamp": ts, "step": step, "run_id": rid}
                                for k in range(n_keys)]
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
        acknowledged_now = 0
        for samples, errors, first in outs:
            lat.samples += samples
            lat.errors += errors
            lat.first_error = lat.first_error or first
            acknowledged_now += len(samples) * per_key * n_keys
        if acknowledged_now:
            thr.samples.append(acknowledged_now / wall)
        rounds.append(f"{acknowledged_now} metrics in {wall:.2f}s")

    for round_ in range(CONCURRENT_ROUNDS):
        one_round(round_)
        hand_over()
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
    thr.check = "rounds: " + ", ".join(rounds)


# --------------------------------------------------------------------------------------------------
# Model registry
# --------------------------------------------------------------------------------------------------


@dataclass
class PlannedModel:
    name: str
    tags: list[dict]
    description: str
    versions: list[dict]  # CreateModelVersion bodies without name/source/run_id, in version order
    stages: dict[int, str]  # version -> stage, for the versions that leave "None"
    aliases: dict[str, int]  # alias -> version

    def latest(self) -> dict[str, int]:
        """stage -> highest version in that stage (what latest_versions lists)."""
        out: dict[str, int] = {}
        for v in range(1, len(self.versions) + 1):
            stage = self.stages.get(v, "None")
            out[stage] = max(out.get(stage, 0), v)
        return out


def registry_plan(n_models: int, n_versions: int) -> list[PlannedModel]:
    """Deterministic registry seed: identical on every server.

    Every model gets 2 tags and a description; every version 2 tags and a description. Stages: the last
    version of every 2nd model goes to Production, the one before it of every 3rd model to Staging,
    version 1 of every 4th model to Archived; every 2nd model has the alias "champion" (last version) and
    every 10th one also "challenger" (the version before it).
    """
    rng = random.Random(20261127)
    plan = []
    for i in range(n_models):
        versions = [
            {"tags": [{"key": "framework", "value": rng.choice(["sklearn", "pytorch", "xgboost"])},
                      {"key": "quality", "value": f"q{rng.randrange(5)}"}],
             "description": f"version {v} of model {i}"}
            for v in range(1, n_versions + 1)
        ]
        stages: dict[int, str] = {}
        if i % 4 == 0 and n_versions >= 3:
            stages[1] = "Archived"
        if i % 3 == 0 and n_versions >= 2:
            stages[n_versions - 1] = "Staging"
        if i % 2 == 0:
            stages[n_versions] = "Production"
        aliases = {"champion": n_versions} if i % 2 == 0 else {}
        if i % 10 == 0 and n_versions >= 2:
            aliases["challenger"] = n_versions - 1
        plan.append(PlannedModel(
            name=f"bench-model-{i:05d}",
            tags=[{"key": "team", "value": f"team-{i % 7}"},
                  {"key": "task", "value": rng.choice(["classification", "regression", "ranking"])}],
            description=f"benchmark model {i}",
            versions=versions, stages=stages, aliases=aliases,
        ))
    return plan


def seed_registry(srv: Server, cfg: Settings, plan: list[PlannedModel], run_id: str) -> int:
    """Creates the planned models through the API with a pool of clients (one session per thread).

    One task per model (its versions are numbered in order, so one model never has two writers).
    Returns the number of requests sent; raises the first error.
    """
    source = f"runs:/{run_id}/model"
    local = threading.local()
    clients: list[Client] = []
    lock = threading.Lock()
    counted = [0]

    def client() -> Client:
        sc = getattr(local, "client", None)
        if sc is None:
            sc = local.client = Client(srv.url, cfg.timeout)
            with lock:
                clients.append(sc)
        return sc

    def seed_model(m: PlannedModel) -> None:
        sc = client()
        n = 0
        sc.ok_json(sc.post("/registered-models/create", {"name": m.name, "tags": m.tags, "description": m.description}))
        n += 1
        for v, body in enumerate(m.versions, start=1):
            got = sc.ok_json(sc.post("/model-versions/create", {
                "name": m.name, "source": source, "run_id": run_id, "tags": body["tags"], "description": body["description"],
            }))
            n += 1
            number = str(got.get("model_version", {}).get("version"))
            if number != str(v):
                raise OpError(f"{m.name}: created version {number}, expected {v}")
        for v, stage in sorted(m.stages.items()):
            sc.ok_json(sc.post("/model-versions/transition-stage", {
                "name": m.name, "version": str(v), "stage": stage, "archive_existing_versions": False,
            }))
            n += 1
        for alias, v in m.aliases.items():
            sc.ok_json(sc.post("/registered-models/alias", {"name": m.name, "alias": alias, "version": str(v)}))
            n += 1
        with lock:
            counted[0] += n

    error = None
    ex = concurrent.futures.ThreadPoolExecutor(cfg.registry_seed_threads)
    try:
        futs = [ex.submit(seed_model, m) for m in plan]
        for f in concurrent.futures.as_completed(futs):
            exc = f.exception()
            if exc is not None and error is None:
                error = exc
                for other in futs:
                    other.cancel()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
        for sc in clients:
            sc.close()
    if error is not None:
        raise error
    return counted[0]


def _version_key(mv: dict) -> tuple[str, int, str]:
    return (mv.get("name"), int(mv.get("version", 0)), mv.get("current_stage"))


def check_models_page(models: list[dict], by_name: dict[str, PlannedModel], want: int) -> str:
    """The page has `want` models, each with its planned latest versions, tags and aliases."""
    if len(models) != want:
        return f"WRONG: {len(models)} models, expected {want}"
    n_latest = 0
    for rm in models:
        m = by_name.get(rm.get("name"))
        if m is None:
            return f"WRONG: unexpected model {rm.get('name')!r}"
        latest = sorted((mv.get("current_stage"), int(mv.get("version", 0))) for mv in rm.get("latest_versions", []))
        if latest != sorted(m.latest().items()):
            return f"WRONG: {m.name} latest_versions {latest}, expected {sorted(m.latest().items())}"
        if len(rm.get("tags", [])) != len(m.tags) or len(rm.get("aliases", [])) != len(m.aliases):
            return f"WRONG: {m.name} has {len(rm.get('tags', []))} tags / {len(rm.get('aliases', []))} aliases"
        n_latest += len(latest)
    return f"ok ({len(models)} models, {n_latest} latest versions)"


def check_versions(versions: list[dict], models: list[PlannedModel]) -> str:
    """Exactly the planned versions of `models`, with their stages and 2 tags each."""
    want = sorted((m.name, v, m.stages.get(v, "None")) for m in models for v in range(1, len(m.versions) + 1))
    got = sorted(_version_key(mv) for mv in versions)
    if got != want:
        return f"WRONG: {len(got)} versions (expected {len(want)}) or wrong numbers/stages"
    if any(len(mv.get("tags", [])) != 2 for mv in versions):
        return "WRONG: versions without their 2 tags"
    return f"ok ({len(got)} versions)"


def registry_workload(srv: Server, cfg: Settings, c: Client, exp_id: str, results: dict[str, OpResult], op, log) -> None:
    plan = registry_plan(cfg.registry_models, cfg.registry_versions)
    by_name = {m.name: m for m in plan}
    total_versions = cfg.registry_models * cfg.registry_versions
    # the model the single-model reads look at: one with every stage and both aliases if there is one
    half = plan[len(plan) // 2:] + plan[:len(plan) // 2]
    pick = next((m for m in half if len(m.latest()) == 4 and len(m.aliases) == 2),
                next((m for m in half if m.aliases), half[0]))
    log(f"  seeding registry: {cfg.registry_models} models x {cfg.registry_versions} versions "
        f"({cfg.registry_seed_threads} clients) ...")
    seed = results["registry_seeding"]
    t0 = time.monotonic()
    try:
        run_id = c.create_run(exp_id, "registry-source")
        n_requests = seed_registry(srv, cfg, plan, run_id)
    except Exception as exc:  # noqa: BLE001
        msg = f"seeding failed after {time.monotonic() - t0:.0f}s: {exc.__class__.__name__}: {exc}"[:400]
        seed.errors, seed.first_error = 1, msg
        for k in REGISTRY_KEYS:
            results[k].skipped = msg
        log(f"  {msg}")
        return
    took = time.monotonic() - t0
    seed.samples = [took]
    seed.check = (f"{cfg.registry_models} models, {total_versions} versions, {n_requests} requests "
                  f"({n_requests / took:.0f} req/s, {cfg.registry_seed_threads} clients)")
    log(f"  registry seeding took {took:.1f}s ({n_requests} requests)")
    analyze_db(srv, cfg, log)

    rm_params = lambda n: {"filter": PROMPT_FILTER, "max_results": n}  # noqa: E731
    name_params = {"filter": f"name='{pick.name}'", "max_results": 10000}
    all_params = {"max_results": 10000}
    get_params = {"name": pick.name}
    alias = "challenger" if "challenger" in pick.aliases else next(iter(pick.aliases), None)
    alias_params = {"name": pick.name, "alias": alias}
    if alias is None:
        results["get_alias"].skipped = "no model with an alias in this --registry-models/--registry-versions shape"

    # correctness checks (untimed), the same on every server
    def check(key, fn):
        try:
            results[key].check = fn()
        except Exception as exc:  # noqa: BLE001
            results[key].check = f"check failed: {exc.__class__.__name__}: {exc}"[:300]

    ordered = sorted(plan, key=lambda m: m.name)  # the default order (name ASC) on both servers

    def chk_rm(n):
        def fn():
            data = c.ok_json(c.get("/registered-models/search", rm_params(n)))
            models = data.get("registered_models", [])
            verdict = check_models_page(models, by_name, min(n, len(plan)))
            if verdict.startswith("ok") and [m.get("name") for m in models] != [m.name for m in ordered[:n]]:
                verdict = "WRONG: not the first models by name"
            has_more = len(plan) > n
            if verdict.startswith("ok") and bool(data.get("next_page_token")) != has_more:
                verdict = f"WRONG: next_page_token {'missing' if has_more else 'unexpected'}"
            return verdict
        return fn

    def chk_name():
        return check_versions(c.ok_json(c.get("/model-versions/search", name_params)).get("model_versions", []), [pick])

    def chk_all():
        data = c.ok_json(c.get("/model-versions/search", all_params))
        first = data.get("model_versions", [])
        versions, token, pages = list(first), data.get("next_page_token"), 1
        while token and pages < 50:  # bounded: a server that pages below 10,000 is still counted
            data = c.ok_json(c.get("/model-versions/search", {**all_params, "page_token": token}))
            versions += data.get("model_versions", [])
            token, pages = data.get("next_page_token"), pages + 1
        verdict = check_versions(versions, plan)
        if len(first) != len(versions):
            verdict = f"WRONG: the page holds {len(first)} of {len(versions)} versions ({pages} pages); " + verdict
        return verdict

    def chk_get():
        rm = c.ok_json(c.get("/registered-models/get", get_params)).get("registered_model", {})
        verdict = check_models_page([rm], by_name, 1)
        return verdict if not verdict.startswith("ok") else f"ok ({len(rm.get('latest_versions', []))} latest versions)"

    def chk_alias():
        mv = c.ok_json(c.get("/registered-models/alias", alias_params)).get("model_version", {})
        want = pick.aliases[alias]
        if (mv.get("name"), str(mv.get("version"))) != (pick.name, str(want)):
            return f"WRONG: {mv.get('name')} v{mv.get('version')}, expected {pick.name} v{want}"
        return f"ok (v{want}{', aliases ' + ','.join(sorted(mv['aliases'])) if mv.get('aliases') else ''})"

    check("search_rm_100", chk_rm(100))
    check("search_rm_1000", chk_rm(1000))
    check("search_mv_name", chk_name)
    check("search_mv_all", chk_all)
    check("get_rm", chk_get)
    if alias is not None:
        check("get_alias", chk_alias)

    op("search_rm_100", lambda _: c.ok_json(c.get("/registered-models/search", rm_params(100))), cfg.repeat)
    # the heavy registry reads take seconds on the reference: one warm-up call (the checks above warmed up too)
    heavy_warmup = min(cfg.warmup, 1)
    op("search_rm_1000", lambda _: c.ok_json(c.get("/registered-models/search", rm_params(1000))), cfg.repeat_heavy,
       heavy_warmup)
    op("search_mv_name", lambda _: c.ok_json(c.get("/model-versions/search", name_params)), cfg.repeat)
    op("search_mv_all", lambda _: c.ok_json(c.get("/model-versions/search", all_params)), cfg.repeat_heavy, heavy_warmup)
    op("get_rm", lambda _: c.ok_json(c.get("/registered-models/get", get_params)), cfg.repeat)
    if alias is not None:
        op("get_alias", lambda _: c.ok_json(c.get("/registered-models/alias", alias_params)), cfg.repeat)


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def bench_machine_info(venv: Path, pg_base: str) -> list[tuple[str, str]]:
    packages = ("mlflow", "django", "gunicorn", "uvicorn", "flask", "sqlalchemy", "psycopg")
    return [*machine_info(venv, packages), ("PostgreSQL", pg_version(pg_base))]


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


def floor_table(results: dict[str, dict[str, OpResult]], servers: dict[str, Server]) -> list[str]:
    """The small calls against the floor: what any server could reach, and what the servers do above the floor."""
    def median(name: str, key: str) -> float | None:
        res = results.get(name, {}).get(key)
        return res.median if name in servers and res is not None and res.samples else None

    floor = median("ours", "http_floor")
    if not floor:
        return []
    rows = []
    for key, label, higher, goal in OPS:
        ours = median("ours", key)
        refs = [(median(name, key), median(name, "http_floor")) for name in ("ref-uvicorn", "ref-gunicorn")]
        refs = [(latency, ref_floor) for latency, ref_floor in refs if latency and ref_floor]
        if higher or goal is None or not ours or not refs or ours > 10 * floor:
            continue
        ref, ref_floor = min(refs)  # the faster reference, as in the ratio
        cells = [label, f"{ref / floor:.2f}×", f"{ours - floor:.1f}"]
        if ref > ref_floor and ours > floor:
            cells += [f"{ref - ref_floor:.1f}", f"{(ref - ref_floor) / (ours - floor):.2f}×"]
        else:  # e.g. uvicorn: its /health stalls on Nagle's algorithm, a floor some of its calls do not pay
            cells += ["n/a", "n/a"]
        rows.append(markdown_row(cells))
    if not rows:
        return []
    return ["### Small calls against the floor\n",
            "No server can answer faster than GET /health, so a small call's ratio cannot exceed the faster "
            "reference's latency over our floor (ceiling). Above the floor: each server's median minus its own "
            "floor, in ms, and their ratio (information, no goal).\n",
            markdown_row(["operation", "ceiling", "ours above floor", "reference above floor", "ratio above floor"]),
            "|---|---:|---:|---:|---:|", *rows, ""]


def build_report(args, info, servers: dict[str, Server], status: dict[str, str], results: dict[str, dict[str, OpResult]], cfg: Settings) -> str:
    out = []
    out.append("## Benchmark: mlflow-sharinghub vs reference `mlflow server`\n")
    out.append("| | |\n|---|---|")
    for k, v in info:
        out.append(f"| {k} | {v} |")
    out.append(f"| workload | {cfg.runs} runs (10 metrics, 5 params, 5 tags each) + {cfg.experiments} experiments; "
               f"repeat {cfg.repeat} (heavy ops {cfg.repeat_heavy}), warmup {cfg.warmup}, per-op budget {cfg.max_op_seconds:.0f}s; "
               f"{cfg.writers} writers x {cfg.conc_batches} batches x {CONCURRENT_ROUNDS} rounds (throughput: median of the rounds); "
               f"registry {cfg.registry_models} models x {cfg.registry_versions} versions = "
               f"{cfg.registry_models * cfg.registry_versions} versions (seeded by {cfg.registry_seed_threads} clients); "
               f"{args.workers} workers per server{'; ANALYZE after seeding' if cfg.analyze else ''}"
               f"{'; --quick' if args.quick else ''} |")
    out.append("")
    out.append("Median latency in ms (lower is better) unless stated. ratio = faster reference / ours "
               "(>1: ours is faster); for throughput, ours / faster reference. The first row is the floor under "
               "every call (GET /health: client, HTTP, server framework; no goal), the last the registry "
               "set-up time in seconds (not a measured operation, no goal).\n")
    hdr = ["operation", "ours", "reference (uvicorn)", "reference (gunicorn/Flask)", "ratio", "goal", "met"]
    out.append(markdown_row(hdr))
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
        goal_cell = f"≥{goal:g}×" if goal is not None else "info"
        if "ours" in meds and refs and meds["ours"] > 0:
            if higher:
                ratio = meds["ours"] / max(refs)
            else:
                ratio = min(refs) / meds["ours"]
            ours_res = results["ours"][key]
            clean = ours_res.errors == 0 and not ours_res.check.startswith(("WRONG", "LOST"))
            met = "—" if goal is None else ("yes" if ratio >= goal else "no") if clean else "no (errors)"
            cells += [f"{ratio:.2f}×", goal_cell, met]
        else:
            cells += ["n/a", goal_cell, "—" if goal is None else "n/a"]
        out.append(markdown_row(cells))
    out.append("")
    out.extend(floor_table(results, servers))
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
                if res.samples and not higher and OPS_GOALS[key] is not None:
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
        out.append(markdown_row(row))
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
    p.add_argument("--workloads", default="tracking,registry",
                   help="comma-separated subset of tracking (runs, metrics, experiments, writers) and registry")
    p.add_argument("--quick", action="store_true", help="~2 minute smoke run (small data, few repetitions)")
    p.add_argument("--repeat", type=int, default=None, help="measured calls per cheap operation (default 60, quick 10)")
    p.add_argument("--repeat-heavy", type=int, default=None,
                   help="measured calls for log_batch 500/1000, search_runs, search_registered_models max_results=1000 "
                        "and search_model_versions of all versions (default 15, quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls before each operation (default 3, quick 1)")
    p.add_argument("--runs", type=int, default=None, help="runs in the search experiment (default 2000, quick 300)")
    p.add_argument("--experiments", type=int, default=None, help="extra experiments for search_experiments (default 100)")
    p.add_argument("--writers", type=int, default=8, help="concurrent writer threads")
    p.add_argument("--conc-batches", type=int, default=None, help="log_batch calls per writer (default 25, quick 5)")
    p.add_argument("--conc-batch-size", type=int, default=100, help="metrics per concurrent log_batch (multiple of 10)")
    p.add_argument("--max-op-seconds", type=float, default=None,
                   help="time budget per measured operation; stops early after at least 3 samples (default 40, quick 8)")
    p.add_argument("--seed-threads", type=int, default=4, help="threads used to seed the search experiment")
    p.add_argument("--registry-models", type=int, default=None,
                   help="registered models seeded for the registry rows (default 1000, quick 100; 0 = no registry rows)")
    p.add_argument("--registry-versions", type=int, default=None,
                   help="versions per registered model (default 10, quick 5)")
    p.add_argument("--registry-seed-threads", type=int, default=8,
                   help="concurrent clients (one session each) seeding the registry")
    p.add_argument("--timeout", type=float, default=120.0, help="HTTP timeout per request (s)")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for /health")
    p.add_argument("--ref-gunicorn-opts", default="--log-level warning",
                   help="--gunicorn-opts passed to `mlflow server` for the gunicorn/Flask reference")
    p.add_argument("--venv", default=str(REPO / ".venv"), help="virtualenv with gunicorn, mlflow, django")
    p.add_argument("--output", default=str(RESULTS_DIR / "latest.md"), help="Markdown report path")
    p.add_argument("--keep-dbs", action="store_true", help="keep the benchmark databases afterwards")
    p.add_argument("--analyze", action="store_true",
                   help="run ANALYZE on each server's database after seeding (set-up, the same for every server): "
                        "what autovacuum does in time; without it, a PostgreSQL with autovacuum off plans every "
                        "query on never-analyzed tables")
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
        registry_models=max(0, d(args.registry_models, 1000, 100)),
        registry_versions=max(1, d(args.registry_versions, 10, 5)),
        registry_seed_threads=max(1, args.registry_seed_threads),
        workloads=tuple(w.strip() for w in args.workloads.split(",") if w.strip()),
        analyze=args.analyze,
    )
    bad = [w for w in cfg.workloads if w not in ("tracking", "registry")]
    if bad:
        p.error(f"unknown workload(s) {bad}; choose from tracking, registry")
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
    kill_children_on_exit()

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    try:
        pg_exec(args.pg, "SELECT 1")
    except Exception as exc:  # noqa: BLE001
        print(f"cannot connect to PostgreSQL at {args.pg}: {exc}", file=sys.stderr)
        return 2

    info = bench_machine_info(venv, args.pg)
    cpu_watch = CpuWatch()
    cpu_watch.start()
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
        running = [name for name in servers if status[name] == "ok"]
        baton = Baton(running)

        def work(name: str) -> None:
            srv = servers[name]
            baton.take(name)
            _turns.baton, _turns.name = baton, name
            try:
                results[name] = run_workload(srv, cfg, lambda msg: log(f"[{name}] {msg}"))
            except Exception as exc:  # noqa: BLE001
                status[name] = f"workload crashed: {exc.__class__.__name__}: {exc}"
                traceback.print_exc()
            finally:
                if srv.proc is not None and srv.proc.poll() is not None:
                    srv.notes.append(f"server process had exited with {srv.proc.returncode} by the end; see {srv.log_path}")
                log(f"   {name} done")
                baton.leave(name)

        threads = [threading.Thread(target=work, args=(name,), name=f"bench-{name}", daemon=True) for name in running]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)  # a Ctrl-C reaches the main thread
        for srv in servers.values():
            srv.stop()
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
    info.append(("CPU time during the run", cpu_watch.stop()))
    report = build_report(args, info, servers, status, results, cfg)
    print()
    print(report)
    out = write_report(report + "\n", args.output)
    log(f"report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
