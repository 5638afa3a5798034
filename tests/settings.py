"""Test settings: the suite runs on a real PostgreSQL, never silently on SQLite.

TEST_BACKEND_STORE_URI names a server (postgresql://user@host:port/db; Django creates test_<db> there).
Without it, a throwaway server is started from the local PostgreSQL binaries (pytest-postgresql).
"""

import atexit
import glob
import os
import shutil
import socket
import sys
import tempfile

from mlflow_sh.env import artifact_storage, database_from_uri
from mlflow_sh.settings import *  # noqa: F403
from mlflow_sh.settings import BASE_DIR

HOW_TO_GET_POSTGRES = (
    "tests need PostgreSQL: set TEST_BACKEND_STORE_URI=postgresql://postgres@127.0.0.1:5432/postgres "
    "or install PostgreSQL server binaries (pg_ctl) and run as a non-root user"
)


def _throwaway_postgres() -> str:
    from pytest_postgresql.executors.proc import PostgreSQLExecutor

    pg_ctl = shutil.which("pg_ctl") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)), None)
    if pg_ctl is None or os.geteuid() == 0:  # PostgreSQL refuses to run as root
        sys.exit(HOW_TO_GET_POSTGRES)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="mlflow-sh-pg-")
    executor = PostgreSQLExecutor(
        executable=pg_ctl, host="127.0.0.1", port=port, datadir=f"{workdir}/data", unixsocketdir=workdir,
        logfile=f"{workdir}/log", startparams="-w", dbname="mlflow_sh",
    )
    executor.start()
    atexit.register(lambda: (executor.stop(), shutil.rmtree(workdir, ignore_errors=True)))
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


TEST_BACKEND_STORE_URI = os.environ.get("TEST_BACKEND_STORE_URI") or _throwaway_postgres()
DATABASES = {"default": database_from_uri(TEST_BACKEND_STORE_URI, variable="TEST_BACKEND_STORE_URI", base_dir=BASE_DIR)}
DATABASES["default"]["ATOMIC_REQUESTS"] = True
DATABASES["default"]["CONN_MAX_AGE"] = 0  # live-server threads must not keep connections past a test
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    sys.exit(f"TEST_BACKEND_STORE_URI must name a PostgreSQL server; {HOW_TO_GET_POSTGRES}")
MLFLOW_BACKEND_STORE_URI_MASKED = TEST_BACKEND_STORE_URI
# Artifacts of the suite go to a throwaway folder, never to ./data (tests that need S3 switch to moto).
_ARTIFACTS = tempfile.mkdtemp(prefix="mlflow-sh-test-artifacts-")
atexit.register(shutil.rmtree, _ARTIFACTS, ignore_errors=True)
STORAGES = {**STORAGES, "artifacts": artifact_storage(  # noqa: F405
    _ARTIFACTS, variable="MLFLOW_ARTIFACTS_DESTINATION", endpoint_url="", region="", addressing_style="auto", verify_tls=True)}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
