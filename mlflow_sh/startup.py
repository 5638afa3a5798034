"""What the server tells its operator at start: database, artifact store, permission mode, web UI."""

import logging

from django.conf import settings

from mlflow_sh.webui.assets import installed_version

logger = logging.getLogger("mlflow_sh")


def permission_mode() -> str:
    if settings.PERMISSION_MODE == "gitlab":
        return f"GitLab at {settings.GITLAB_URL} (mandatory topics: {', '.join(settings.GITLAB_MANDATORY_TOPICS) or 'none'})"
    if settings.PERMISSION_MODE == "sharinghub":
        default = ", default-token mode" if settings.SHARINGHUB_AUTH_DEFAULT_TOKEN else ""
        return f"SharingHub at {settings.SHARINGHUB_URL} (collection {settings.SHARINGHUB_STAC_COLLECTION}{default})"
    return "open (no SHARINGHUB_URL or GITLAB_URL set: every request is allowed)"


def log_configuration() -> None:
    logger.info("database: %s", settings.MLFLOW_BACKEND_STORE_URI_MASKED)
    logger.info("artifact store: %s", settings.MLFLOW_ARTIFACTS_DESTINATION)
    logger.info("permission mode: %s", permission_mode())
    if settings.STAC_PUBLISH_URL:
        logger.info("STAC publication: %s, collection %s", settings.STAC_PUBLISH_URL, settings.STAC_PUBLISH_COLLECTION)
    else:
        logger.info("STAC publication: off (STAC_PUBLISH_URL not set): nothing is recorded or sent")
    logger.info("cache: %s", settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1])
    log_web_ui()
    if settings.PERMISSION_MODE == "open":
        logger.warning("open mode: anyone who reaches this server can read and change everything.")
    if settings.SECRET_KEY_GENERATED:
        logger.warning("SECRET_KEY is not set: using a random key for this process; set it when running replicas.")
    if settings.DEBUG:
        logger.warning("DEBUG is on: never in production.")


def log_web_ui() -> None:
    ui_version = installed_version(settings.MLFLOW_UI_DIR)
    if ui_version is None:
        logger.warning("web UI: not served, no MLflow UI bundle in %s (`python manage.py fetch_ui` puts it there); "
                       "the API works without it", settings.MLFLOW_UI_DIR)
    elif ui_version != settings.MLFLOW_UI_VERSION:
        logger.warning("web UI: served, MLflow %s from %s, not the tested %s (`python manage.py fetch_ui` replaces it)",
                       ui_version, settings.MLFLOW_UI_DIR, settings.MLFLOW_UI_VERSION)
    else:
        logger.info("web UI: served, MLflow %s from %s", ui_version, settings.MLFLOW_UI_DIR)
