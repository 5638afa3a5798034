#!/usr/bin/env python3
"""What do SharingHub permissions cost per request? p50 latency and SQL queries, open mode vs SharingHub mode.

The same server (``gunicorn mlflow_sh.wsgi:application -c mlflow_sh/gunicorn.conf.py``, as benchmarks/bench.py
starts it) runs once per mode, each on its own fresh PostgreSQL database and loopback port:

* ``open``             no SHARINGHUB_URL: no checks at all (the baseline);
* ``sharinghub``       SHARINGHUB_URL = the SharingHub test double (tests/doubles/sharinghub.py, started in this
                       process on loopback), local-memory cache (the default without CACHE_URL);
* ``sharinghub-redis`` the same with CACHE_URL=redis://127.0.0.1:6379/<--redis-db> (how replicas share the cache).

Every server gets the same data through the project view ``/team/wine/tracking/`` (experiment
``bench (42)`` with one run), then an untimed warm-up (fresh connections, so that every worker answers) fills
the permission cache of every worker; PROJECT_CACHE_TIMEOUT and SHARINGHUB_AUTH_CACHE_TIMEOUT are raised to
3600 s so that it stays warm for the whole run (the double must receive no call during the measurement, which
the report shows). The servers are then measured
*interleaved*: one request to each server in turn, never two in flight, so background load on the machine
hits all modes alike. Operations: ``runs/get`` and ``runs/log-batch`` with 10 metrics, with
``Authorization: Bearer`` in the project view (the MLflow client's requests).

SQL queries per request are counted in-process (Django's test client and CaptureQueriesContext, against the
``open`` database) rather than over HTTP, once in open mode and once in SharingHub mode with a warm cache.

Goal (issue 5): at most 2 ms and at most 1 extra SQL query per request. Results go to stdout and to
benchmarks/results/permissions-latest.md. A measurement tool, not a test: it never asserts on timings.

    .venv/bin/python benchmarks/bench_permissions.py                 # ~1 min
    .venv/bin/python benchmarks/bench_permissions.py --repeat 2000 --modes open,sharinghub
"""

from __future__ import annotations

import argparse
import atexit
import datetime as _dt
import os
import platform
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

try:
    import psycopg  # noqa: F401 - creates the databases (common.pg_exec) and serves count_queries()
    import requests
except ImportError as exc:  # pragma: no cover - usage error
    sys.exit(f"bench_permissions.py needs requests and psycopg (use the project's .venv/bin/python): {exc}")

from common import (REPO, RESULTS_DIR, drop_db, free_port, kill_all, markdown_row, pg_uri, recreate_db, run_to_end,
                    spawn, stop, tail, wait_for_health, write_report)

sys.path.insert(0, str(REPO))  # for tests.doubles and, in count_queries(), the project itself

PROJECT, PROJECT_ID, TOKEN = "team/wine", 42, "bench-token"
VIEW = f"/{PROJECT}/tracking"
API = "/api/2.0/mlflow"
MODES = ("open", "sharinghub", "sharinghub-redis")
OPS = {"get_run": "runs/get", "log_batch_10": "runs/log-batch 10 metrics"}
GOAL_MS, GOAL_QUERIES = 2.0, 1


# --- servers -------------------------------------------------------------------------------------------------------


class Server:
    def __init__(self, mode: str, args, double_url: str, log_dir: Path):
        self.mode, self.args, self.double_url = mode, args, double_url
        self.db = f"mlflow_bench_perm_{mode.replace('-', '_')}"
        self.log = log_dir / f"permissions-{mode}.log"
        self.port = 0
        self.proc = None
        self.artifacts = None
        self.command = ""
        self.session = requests.Session()
        self.run_id = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in {"SHARINGHUB_URL", "GITLAB_URL", "CACHE_URL", "PYTHONPATH"}}
        venv = Path(self.args.venv)
        env.update({
            "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv), "PYTHONUNBUFFERED": "1",
            "MLFLOW_BACKEND_STORE_URI": pg_uri(self.args.pg, self.db), "MLFLOW_ARTIFACTS_DESTINATION": str(self.artifacts),
            "MLFLOW_HOST": "127.0.0.1", "MLFLOW_PORT": str(self.port), "MLFLOW_WORKERS": str(self.args.workers),
            "MLFLOW_ACCESS_LOG": "", "SECRET_KEY": "bench-permissions-secret-key-0123456789", "LOG_LEVEL": "WARNING",
        })
        if self.mode != "open":
            env["SHARINGHUB_URL"] = self.double_url
            # warm cache for the whole run: the default TTLs (30 s / 60 s) are shorter than the measurement
            env["PROJECT_CACHE_TIMEOUT"] = env["SHARINGHUB_AUTH_CACHE_TIMEOUT"] = "3600"
        if self.mode == "sharinghub-redis":
            env["CACHE_URL"] = f"redis://127.0.0.1:6379/{self.args.redis_db}"
        return env

    def start(self) -> None:
        self.port = free_port()
        self.artifacts = Path(tempfile.mkdtemp(prefix=f"bench-perm-{self.mode}-"))
        self.log.write_text("")
        recreate_db(self.args.pg, self.db)
        bin_ = Path(self.args.venv) / "bin"
        migrate = [str(bin_ / "python"), "manage.py", "migrate", "--noinput"]
        if run_to_end(migrate, cwd=REPO, env=self.env(), log_path=self.log) != 0:
            raise RuntimeError(f"migrate failed for {self.mode}:\n{tail(self.log)}")
        cmd = [str(bin_ / "gunicorn"), "mlflow_sh.wsgi:application", "-c", "mlflow_sh/gunicorn.conf.py",
               "--workers", str(self.args.workers), "--bind", f"127.0.0.1:{self.port}"]
        extra = [f"{k}={v}" for k, v in self.env().items()
                 if k in {"SHARINGHUB_URL", "CACHE_URL", "PROJECT_CACHE_TIMEOUT", "SHARINGHUB_AUTH_CACHE_TIMEOUT"}]
        self.command = shlex.join([*extra, *cmd])
        self.proc = spawn(cmd, cwd=REPO, env=self.env(), log_path=self.log)
        try:
            wait_for_health(self.url, self.proc, self.args.startup_timeout, self.log)
        except RuntimeError as exc:
            raise RuntimeError(f"{self.mode}: {exc}") from None

    def stop(self) -> None:
        self.session.close()
        stop(self.proc)
        self.proc = None
        if self.artifacts is not None:
            shutil.rmtree(self.artifacts, ignore_errors=True)
        if not self.args.keep_dbs:
            drop_db(self.args.pg, self.db)

    # the workload, as the MLflow client sends it

    def call(self, method: str, path: str, body: dict) -> requests.Response:
        headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "mlflow-python-client/3.18.0"}
        if method == "GET":
            response = self.session.get(f"{self.url}{VIEW}{API}/{path}", params=body, headers=headers, timeout=30)
        else:
            response = self.session.post(f"{self.url}{VIEW}{API}/{path}", json=body, headers=headers, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"{self.mode}: {method} {path} -> {response.status_code} {response.text[:300]}")
        return response

    def seed(self) -> None:
        experiment_id = self.call("POST", "experiments/create", {"name": f"bench ({PROJECT_ID})"}).json()["experiment_id"]
        run = self.call("POST", "runs/create", {"experiment_id": experiment_id, "start_time": 1000, "run_name": "bench"})
        self.run_id = run.json()["run"]["info"]["run_id"]
        self.call("POST", "runs/log-batch", {"run_id": self.run_id, "params": [{"key": f"p{i}", "value": str(i)} for i in range(5)],
                                             "metrics": [{"key": f"m{i}", "value": 0.5, "timestamp": 1, "step": 0} for i in range(10)]})

    def op(self, name: str, step: int) -> None:
        if name == "get_run":
            self.call("GET", "runs/get", {"run_id": self.run_id})
        else:
            metrics = [{"key": f"m{i}", "value": float(step), "timestamp": 1000 + step, "step": step} for i in range(10)]
            self.call("POST", "runs/log-batch", {"run_id": self.run_id, "metrics": metrics})


def measure(servers: list[Server], repeat: int, warmup: int) -> dict[tuple[str, str], list[float]]:
    """Interleaved: op by op, one request to each server in turn (never two in flight)."""
    samples: dict[tuple[str, str], list[float]] = {}
    step = 10
    for name in OPS:
        for _ in range(warmup):
            step += 1
            for server in servers:
                server.op(name, step)
        for _ in range(repeat):
            step += 1
            for server in servers:
                started = time.perf_counter()
                server.op(name, step)
                samples.setdefault((server.mode, name), []).append((time.perf_counter() - started) * 1000)
    return samples


# --- SQL queries per request, in-process -------------------------------------------------------------------------


def count_queries(pg_base: str, database: str, double_url: str, run_id: str, timing_repeat: int = 200,
                  redis_db: int | None = None) -> dict[str, dict]:
    """Queries of each operation in open and SharingHub mode (warm cache), with Django's test client; and the
    median time spent in the permission decision (authorize()) itself, which background load disturbs less."""
    os.environ["MLFLOW_BACKEND_STORE_URI"] = pg_uri(pg_base, database)
    os.environ["DJANGO_SETTINGS_MODULE"] = "mlflow_sh.settings"
    os.environ.setdefault("SECRET_KEY", "bench-permissions-secret-key-0123456789")
    for name in ("SHARINGHUB_URL", "GITLAB_URL", "CACHE_URL"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}", "HTTP_USER_AGENT": "mlflow-python-client/3.18.0"}

    def request(name: str, step: int):
        if name == "get_run":
            return client.get(f"{VIEW}{API}/runs/get", {"run_id": run_id}, **headers)
        metrics = [{"key": f"m{i}", "value": float(step), "timestamp": 10_000_000 + step, "step": step} for i in range(10)]
        import json

        return client.post(f"{VIEW}{API}/runs/log-batch", json.dumps({"run_id": run_id, "metrics": metrics}),
                           content_type="application/json", **headers)

    import mlflow_sh.routing as routing
    from permissions import decisions, upstream

    timers: dict[str, list[float]] = {"authorize": [], "lookup": [], "cache": []}
    patched = [(routing, "authorize", "authorize"), (decisions, "owning_projects", "lookup"),
               (upstream, "authenticated", "cache"), (upstream, "project_access", "cache")]
    originals = [(module, attr, getattr(module, attr)) for module, attr, _ in patched]

    def timed(function, timer):
        def wrapper(*a, **kw):
            started = time.perf_counter()
            try:
                return function(*a, **kw)
            finally:
                timers[timer].append((time.perf_counter() - started) * 1000)
        return wrapper

    for module, attr, timer in patched:
        setattr(module, attr, timed(getattr(module, attr), timer))
    caches = {"open": None, "sharinghub": None}
    if redis_db is not None and redis_available(redis_db):
        caches["sharinghub-redis"] = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                                  "LOCATION": f"redis://127.0.0.1:6379/{redis_db}",
                                                  "KEY_PREFIX": "bench-perm"}}
    results: dict[str, dict] = {}
    step = 10_000
    try:
        for name in OPS:
            counts, timing = {}, {}
            for mode, cache_config in caches.items():
                overrides = {"PERMISSION_MODE": "open" if mode == "open" else "sharinghub",
                             "SHARINGHUB_URL": double_url if mode != "open" else "",
                             "PROJECT_CACHE_TIMEOUT": 3600, "SHARINGHUB_AUTH_CACHE_TIMEOUT": 3600}
                if cache_config:
                    overrides["CACHES"] = cache_config
                with override_settings(**overrides):
                    for _ in range(3):  # the first ones warm the cache; the last one is counted
                        step += 1
                        with CaptureQueriesContext(connection) as captured:
                            response = request(name, step)
                        if response.status_code != 200:
                            raise RuntimeError(f"in-process {mode} {name}: {response.status_code} {response.content[:300]!r}")
                    counts[mode] = [q["sql"] for q in captured.captured_queries]
                    for values in timers.values():
                        values.clear()
                    for _ in range(timing_repeat):
                        step += 1
                        request(name, step)
                    timing[mode] = {timer: statistics.median(values) * (len(values) / timing_repeat) if values else 0.0
                                    for timer, values in timers.items()}
            extra = multiset_difference(counts["sharinghub"], counts["open"])
            results[name] = {"open": len(counts["open"]), "sharinghub": len(counts["sharinghub"]), "extra_sql": extra,
                             "timing": timing}
        with connection.cursor() as cursor:  # how long one round trip to PostgreSQL takes right now
            round_trips = []
            for _ in range(timing_repeat):
                started = time.perf_counter()
                cursor.execute("SELECT 1")
                cursor.fetchone()
                round_trips.append((time.perf_counter() - started) * 1000)
        results["select_1_ms"] = statistics.median(round_trips)
    finally:
        for module, attr, function in originals:
            setattr(module, attr, function)
    return results


def normalized(sql: str) -> str:
    """The statement without its values, so that the same query with other parameters compares equal."""
    import re

    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    return re.sub(r"\b\d+(?:\.\d+)?\b", "?", sql)


def multiset_difference(more: list[str], fewer: list[str]) -> list[str]:
    remaining = [normalized(sql) for sql in fewer]
    extra = []
    for sql in more:
        key = normalized(sql)
        if key in remaining:
            remaining.remove(key)
        else:
            extra.append(sql)
    return extra


# --- report ------------------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def fmt(value: float) -> str:
    return f"{value:.2f}"


def report(args, servers: list[Server], samples, queries, double_calls: int, wall: float) -> str:
    modes = [s.mode for s in servers]
    versions = []
    for package in ("django", "gunicorn", "psycopg", "redis"):
        try:
            from importlib.metadata import version

            versions.append(f"{package} {version(package)}")
        except Exception:  # noqa: BLE001
            pass
    lines = [
        "## Benchmark: cost of SharingHub permissions per request", "",
        "| | |", "|---|---|",
        f"| date | {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC |",
        f"| machine | {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()} |",
        f"| load average (1/5/15 min) at start / at end | {args.load_at_start} / "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (CPU contention inflates every figure) |",
        f"| versions | {', '.join(versions)} |",
        f"| servers | gunicorn, {args.workers} workers (gthread, threads from mlflow_sh/gunicorn.conf.py), access log off |",
        f"| workload | project view `{VIEW}/`, Bearer token, warm permission cache (TTLs 3600 s for the run); "
        f"{args.repeat} timed requests per "
        f"operation and mode after {args.warmup} untimed ones, modes interleaved request by request |",
        f"| SharingHub calls during the timed phase | {double_calls} (must be 0: warm cache) |",
        f"| wall time | {wall:.0f}s |",
        "", "Latency in ms (p50, with p90 in parentheses); overhead = p50 of the mode − p50 of open mode (the goal's "
        "figure); paired Δ = median of the differences between consecutive requests to open mode and to the mode.", "",
    ]
    header = ["operation", *[f"{m} p50 (p90)" for m in modes], *[f"overhead {m}" for m in modes if m != "open"],
              *[f"paired Δ {m}" for m in modes if m != "open"], f"goal ≤ {GOAL_MS:g} ms",
              *[f"met {m}" for m in modes if m != "open"]]
    lines += [markdown_row(header), "|" + "---|" * len(header)]
    for name, label in OPS.items():
        p50 = {m: pct(samples[(m, name)], 0.5) for m in modes}
        p90 = {m: pct(samples[(m, name)], 0.9) for m in modes}
        overheads = [p50[m] - p50["open"] for m in modes if m != "open"] if "open" in p50 else []
        # request i of a mode was sent right after request i of open mode: the median of those differences
        # is less sensitive to background load than the difference of the medians
        paired = [statistics.median(b - a for a, b in zip(samples[("open", name)], samples[(m, name)]))
                  for m in modes if m != "open"]
        row = [label, *[f"{fmt(p50[m])} ({fmt(p90[m])})" for m in modes], *[f"{o:+.2f}" for o in overheads],
               *[f"{d:+.2f}" for d in paired], f"≤ {GOAL_MS:g}", *["yes" if o <= GOAL_MS else "no" for o in overheads]]
        lines.append(markdown_row(row))
    if queries:
        lines += ["", f"In-process (Django test client against the open server's database, warm cache), SQL queries per "
                  f"request (CaptureQueriesContext):", "",
                  f"| operation | open | sharinghub | extra | goal ≤ {GOAL_QUERIES} | met | extra SQL |",
                  "|---|---:|---:|---:|---:|:---:|---|"]
        for name, label in OPS.items():
            q = queries[name]
            extra = q["sharinghub"] - q["open"]
            sql = "<br>".join(f"`{s[:150]}`" for s in q["extra_sql"]) or "-"
            lines.append(f"| {label} | {q['open']} | {q['sharinghub']} | {extra:+d} | ≤ {GOAL_QUERIES} | "
                         f"{'yes' if extra <= GOAL_QUERIES else 'no'} | {sql} |")
        timed_modes = list(queries[next(iter(OPS))]["timing"])
        lines += ["", "In-process, median ms per request spent in the permission decision `authorize()`, and within it in "
                  "the ownership lookup (the extra SQL query) and in the cache (`upstream.authenticated` + "
                  f"`upstream.project_access`); one `SELECT 1` round trip to PostgreSQL took "
                  f"{queries['select_1_ms']:.3f} ms at that time:", "",
                  "| operation | mode | authorize() | ownership lookup (SQL) | cache |", "|---|---|---:|---:|---:|"]
        for name, label in OPS.items():
            for mode in timed_modes:
                t = queries[name]["timing"][mode]
                lines.append(f"| {label} | {mode} | {t['authorize']:.3f} | {t['lookup']:.3f} | {t['cache']:.3f} |")
    lines += ["", "Commands:", ""] + [f"* `{s.mode}`: `{s.command}`" for s in servers]
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="p50 latency and SQL queries of get-run and log-batch (10 metrics) in the project view, "
                    "open mode vs SharingHub mode (SharingHub double in this process, warm cache). Goal: <= 2 ms "
                    "and <= 1 extra query per request.")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG_URI", "postgresql://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server to create the benchmark databases on (env BENCH_PG_URI)")
    parser.add_argument("--modes", default="open,sharinghub,sharinghub-redis",
                        help=f"comma-separated subset of {', '.join(MODES)} (open is always included)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server (default 2)")
    parser.add_argument("--repeat", type=int, default=400, help="timed requests per operation and mode")
    parser.add_argument("--warmup", type=int, default=40, help="untimed requests per operation and mode first")
    parser.add_argument("--redis-db", type=int, default=14, help="Redis database of the sharinghub-redis mode")
    parser.add_argument("--no-queries", action="store_true", help="skip the in-process SQL query count")
    parser.add_argument("--keep-dbs", action="store_true", help="keep the benchmark databases")
    parser.add_argument("--startup-timeout", type=float, default=90.0)
    parser.add_argument("--venv", default=str(REPO / ".venv"), help="virtualenv with gunicorn and the project")
    parser.add_argument("--out", default=str(RESULTS_DIR / "permissions-latest.md"), help="where to write the report")
    args = parser.parse_args(argv)
    modes = ["open", *[m for m in args.modes.split(",") if m and m != "open"]]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    args.mode_list = modes
    return args


def forget_redis_entries(db: int) -> None:
    """Remove the entries this run left in Redis (exactly its own: the bench token's two keys per prefix)."""
    import hashlib

    try:
        import redis

        client = redis.Redis.from_url(f"redis://127.0.0.1:6379/{db}", socket_connect_timeout=1)
        fingerprint = hashlib.sha256(f"bearer:{TOKEN}".encode()).hexdigest()
        keys = [f"mlflow-sh:auth:{fingerprint}",
                f"mlflow-sh:project:{fingerprint}:{hashlib.sha256(PROJECT.encode()).hexdigest()}"]
        client.delete(*[f"{prefix}:1:{key}" for prefix in ("", "bench-perm") for key in keys])
    except Exception:  # noqa: BLE001
        pass


def redis_available(db: int) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(f"redis://127.0.0.1:6379/{db}", socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


def main(argv=None) -> int:
    args = parse_args(argv)
    args.load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    atexit.register(kill_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    from tests.doubles.sharinghub import SharingHubDouble

    double = SharingHubDouble().start()
    double.add_project(PROJECT, PROJECT_ID)
    double.token(user=TOKEN, project=PROJECT, level=3)
    if "sharinghub-redis" in args.mode_list and not redis_available(args.redis_db):
        print("Redis not reachable on 127.0.0.1:6379: skipping sharinghub-redis", file=sys.stderr)
        args.mode_list.remove("sharinghub-redis")
    log_dir = RESULTS_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    servers = [Server(mode, args, double.url, log_dir) for mode in args.mode_list]
    started = time.monotonic()
    try:
        for server in servers:
            print(f"starting {server.mode} ...", flush=True)
            server.start()
            server.seed()
        # warm every worker's cache: a keep-alive session sticks to one worker, so fresh connections too
        for server in servers:
            for _ in range(15 * args.workers):
                requests.get(f"{server.url}{VIEW}{API}/runs/get", params={"run_id": server.run_id}, timeout=30,
                             headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"}).raise_for_status()
            for step in range(20):
                server.op("get_run", step)
        calls_before = len(double.state.calls)
        print(f"measuring {len(OPS)} operations x {args.repeat} requests x {len(servers)} modes ...", flush=True)
        samples = measure(servers, args.repeat, args.warmup)
        double_calls = len(double.state.calls) - calls_before
        queries = {}
        if not args.no_queries:
            print("counting SQL queries in-process ...", flush=True)
            redis_db = args.redis_db if "sharinghub-redis" in args.mode_list else None
            queries = count_queries(args.pg, servers[0].db, double.url, servers[0].run_id, args.repeat, redis_db)
    finally:
        for server in servers:
            server.stop()
        double.stop()
        forget_redis_entries(args.redis_db)
    text = report(args, servers, samples, queries, double_calls, time.monotonic() - started)
    write_report(text, args.out)
    print(text)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
