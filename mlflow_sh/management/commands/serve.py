"""`manage.py serve`: apply migrations, then run gunicorn with mlflow_sh/gunicorn.conf.py."""

import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Apply database migrations, then serve the MLflow API with gunicorn (MLFLOW_HOST, MLFLOW_PORT, MLFLOW_WORKERS)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.MLFLOW_HOST, help="bind address (MLFLOW_HOST, default %(default)s)")
        parser.add_argument("--port", type=int, default=settings.MLFLOW_PORT, help="port (MLFLOW_PORT, default %(default)s)")
        parser.add_argument("--workers", type=int, default=settings.MLFLOW_WORKERS, help="worker processes (MLFLOW_WORKERS)")
        parser.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")

    def handle(self, *args, host, port, workers, no_migrate, **options):
        database = settings.DATABASES["default"]
        if database["ENGINE"].endswith("sqlite3"):
            Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        if not no_migrate:
            call_command("migrate_locked", verbosity=1)  # replicas starting together migrate once
        config = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
        os.environ.update(MLFLOW_HOST=host, MLFLOW_PORT=str(port), MLFLOW_WORKERS=str(workers))
        os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", str(config)])
