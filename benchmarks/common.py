"""What the benchmark scripts share: ports, child process groups, PostgreSQL databases, /health, machine facts."""

from __future__ import annotations

import atexit
import datetime as _dt
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------------
# Child processes: each runs in its own process group, so that killing the group also reaches the
# gunicorn/uvicorn workers; whatever is still alive is killed at exit.
# --------------------------------------------------------------------------------------------------

_LIVE: list[subprocess.Popen] = []
_LIVE_LOCK = threading.Lock()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


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


def spawn(cmd: list[str], *, cwd: Path, env: dict, log_path: Path) -> subprocess.Popen:
    """Starts cmd in a new process group, its output appended to log_path after the command line."""
    with open(log_path, "ab") as out:
        out.write(f"\n$ {shlex.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, cwd=str(cwd), env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    with _LIVE_LOCK:
        _LIVE.append(proc)
    return proc


def run_to_end(cmd: list[str], *, cwd: Path, env: dict, log_path: Path, timeout: float = 600) -> int:
    """Runs cmd like spawn() and returns its exit status (a one-off step such as `manage.py migrate`)."""
    proc = spawn(cmd, cwd=cwd, env=env, log_path=log_path)
    try:
        return proc.wait(timeout=timeout)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    _kill_group(proc)
    with _LIVE_LOCK:
        if proc in _LIVE:
            _LIVE.remove(proc)


def kill_all() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
        _LIVE.clear()
    for proc in procs:
        _kill_group(proc)


def live_process_groups() -> set[int]:
    """The process group ids of the children still running (each child leads its own group)."""
    with _LIVE_LOCK:
        return {proc.pid for proc in _LIVE}


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def kill_children_on_exit() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C (so `finally` blocks stop the servers), and atexit kills the rest."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    atexit.register(kill_all)


def wait_for_health(url: str, proc: subprocess.Popen, timeout: float, log_path: Path, *, until_ok: bool = True) -> int:
    """Polls url/health until it answers 200 (with until_ok=False: any status) and returns the status.

    Raises RuntimeError, with the end of the server's log, when the server exits or the time runs out."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering /health:\n{tail(log_path)}")
        try:
            status = requests.get(url + "/health", timeout=5).status_code
            if status == 200 or not until_ok:
                return status
            last = f"HTTP {status}"
        except requests.RequestException as exc:
            last = exc.__class__.__name__
        time.sleep(0.25)
    raise RuntimeError(f"/health did not answer 200 within {timeout:.0f}s ({last}):\n{tail(log_path)}")


def venv_env(venv: Path) -> dict:
    """This process's environment for a server run from venv, quiet and without telemetry."""
    env = dict(os.environ)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    # Keep the servers free of background work that is not part of the workload.
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    return env


# --------------------------------------------------------------------------------------------------
# PostgreSQL (psycopg when importable, else the psql command)
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


def pg_exec(base: str, sql: str) -> str:
    """Runs one statement in the `postgres` database; returns the first column of its first row, or ""."""
    uri = pg_uri(base, "postgres")
    try:
        import psycopg
    except ImportError:
        psql = shutil.which("psql")
        if not psql:
            raise RuntimeError("neither psycopg nor psql is available to create the databases") from None
        out = subprocess.run([psql, uri, "-v", "ON_ERROR_STOP=1", "-tAc", sql], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip())
        return out.stdout.strip()
    with psycopg.connect(uri, autocommit=True, connect_timeout=10) as conn:
        cur = conn.execute(sql)
        row = cur.fetchone() if cur.description else None
        return str(row[0]) if row else ""


def recreate_db(base: str, name: str) -> None:
    drop_db(base, name)
    pg_exec(base, f'CREATE DATABASE "{name}"')


def drop_db(base: str, name: str) -> None:
    pg_exec(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------------


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def _proc_field(path: str, prefix: str) -> str:
    """The value after the colon of the first line of a /proc file that starts with prefix, or ""."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.lower().startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def machine_info(venv: Path, packages: tuple[str, ...]) -> list[tuple[str, str]]:
    """The rows every report starts with: date, CPUs, memory, OS, and the venv's Python and package versions."""
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:
        ncpu = os.cpu_count() or 0
    mem_kib = _proc_field("/proc/meminfo", "memtotal").split()
    python = str(venv / "bin" / "python")
    vers = sh([python, "-c",
               "import importlib.metadata as m\n"
               f"for p in {packages!r}:\n"
               "    try: print(p, m.version(p))\n"
               "    except Exception: print(p, '?')"])
    return [
        ("date", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("nproc", str(ncpu)),
        ("CPU", _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown"),
        ("memory", f"{int(mem_kib[0]) / 1024 / 1024:.1f} GiB" if mem_kib else "unknown"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", sh([python, "-c", "import sys; print(sys.version.split()[0])"]) or "?"),
        ("versions", ", ".join(" ".join(line.split()) for line in vers.splitlines()) or "unknown"),
    ]


def markdown_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def write_report(text: str, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out
