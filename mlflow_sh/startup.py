"""What the server tells its operator at start: database, artifact store, permission mode."""

import logging

from django.conf import settings

logger = logging.getLogger("mlflow_sh")


def permission_mode() -> str:
    return "open (no SHARINGHUB_URL or GITLAB_URL set: every request is allowed)"


def log_configuration() -> None:
    logger.info("database: %s", settings.MLFLOW_BACKEND_STORE_URI_MASKED)
    logger.info("artifact store: %s", settings.MLFLOW_ARTIFACTS_DESTINATION)
    logger.info("permission mode: %s", permission_mode())
    if settings.SECRET_KEY_GENERATED:
        logger.warning("SECRET_KEY is not set: using a random key for this process; set it when running replicas.")
    if settings.DEBUG:
        logger.warning("DEBUG is on: never in production.")
