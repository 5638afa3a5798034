"""`manage.py fetch_ui`: put the MLflow web UI's bundle where the server serves it from (MLFLOW_UI_DIR)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mlflow_sh.webui.assets import FetchError, fetch


class Command(BaseCommand):
    help = (
        "Put the MLflow web UI (mlflow/server/js/build of the pinned mlflow wheel) into MLFLOW_UI_DIR: copied from "
        "the mlflow package installed here when it is that release, else downloaded with "
        "`pip download --no-deps --only-binary :all: mlflow==VERSION` and only the UI extracted. Does nothing when "
        "the folder already holds that release; otherwise replaces it whole, at once."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # "resolve": our --version (the MLflow release) replaces Django's (which prints Django's).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--dest", type=Path, default=settings.MLFLOW_UI_DIR,
                            help="folder to fill (default: MLFLOW_UI_DIR, now %(default)s)")
        parser.add_argument("--version", default=settings.MLFLOW_UI_VERSION,
                            help="MLflow release whose UI to take (default: %(default)s, the tested one)")

    def handle(self, *args, dest: Path, version: str, **options):
        dest = dest.resolve()
        try:
            how = fetch(dest, version)
        except FetchError as err:
            raise CommandError(str(err)) from None
        messages = {"present": "already there", "copied": "copied from the installed mlflow package",
                    "downloaded": "taken from the mlflow wheel"}
        self.stdout.write(f"MLflow {version} web UI in {dest}: {messages[how]}.")
