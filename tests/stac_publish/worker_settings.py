"""Settings of a `manage.py stac_publish` subprocess started by the tests: the test settings, with the artifact
folder of the test process (MLFLOW_SH_TEST_ARTIFACTS) so that the worker reads the same MLmodel files."""

import os

from mlflow_sh.env import artifact_storage
from tests.settings import *  # noqa: F403

if os.environ.get("MLFLOW_SH_TEST_ARTIFACTS"):
    STORAGES = {**STORAGES, "artifacts": artifact_storage(  # noqa: F405
        os.environ["MLFLOW_SH_TEST_ARTIFACTS"], variable="MLFLOW_SH_TEST_ARTIFACTS", endpoint_url="", region="",
        addressing_style="auto", verify_tls=True)}
