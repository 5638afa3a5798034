"""Settings: the only module that reads the environment (names as in the original MLflow SharingHub image)."""

import secrets
from pathlib import Path

from mlflow_sh.env import (
    artifact_storage,
    cache_from_url,
    database_from_uri,
    bbox_polygon,
    env_bbox,
    env_bool,
    env_float,
    env_int,
    env_str,
    masked_uri,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env_str("SECRET_KEY")
SECRET_KEY_GENERATED = not SECRET_KEY
if SECRET_KEY_GENERATED:
    # Random per process: fine for one process; replicas must share one (startup logs warn).
    SECRET_KEY = secrets.token_hex(32)

ALLOWED_HOSTS = [h.strip() for h in env_str("ALLOWED_HOSTS", default="*").split(",") if h.strip()]
# X-Script-Name and X-Forwarded-Proto from the ingress (which sets both); turn off when clients reach us directly.
TRUST_PROXY_HEADERS = env_bool("TRUST_PROXY_HEADERS", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUST_PROXY_HEADERS else None

# --- MLflow server ----------------------------------------------------------------------------
MLFLOW_HOST = env_str("MLFLOW_HOST", default="127.0.0.1")
MLFLOW_PORT = env_int("MLFLOW_PORT", default=5000, minimum=1)
MLFLOW_WORKERS = env_int("MLFLOW_WORKERS", default=4, minimum=1)
MLFLOW_BACKEND_STORE_URI = env_str("MLFLOW_BACKEND_STORE_URI", default="sqlite:///data/mlflow.db")
MLFLOW_BACKEND_STORE_URI_MASKED = masked_uri(MLFLOW_BACKEND_STORE_URI)
MLFLOW_ARTIFACTS_DESTINATION = env_str("MLFLOW_ARTIFACTS_DESTINATION", default="./data/mlartifacts")
MLFLOW_S3_ENDPOINT_URL = env_str("MLFLOW_S3_ENDPOINT_URL")
# Multipart uploads and presigned downloads send clients straight to S3: only when they can reach it.
MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = env_bool("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", default=False)
MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD = env_bool("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", default=False)
MLFLOW_PRESIGNED_URL_EXPIRATION = env_int("MLFLOW_PRESIGNED_URL_EXPIRATION", default=3600, minimum=60)
# The UI's upload-artifact route takes small files only, as MLflow's.
MLFLOW_UI_UPLOAD_MAX_BYTES = 10 * 1024 * 1024
# Experiments get mlflow-artifacts:/<id>, as `mlflow server --serve-artifacts` writes them.
MLFLOW_DEFAULT_ARTIFACT_ROOT = "mlflow-artifacts:"
# MLflow 3.18 adds "sqlstate" and "error_class" to error bodies; 2.x and early 3.x did not.
MLFLOW_ERROR_EXTRA_KEYS = env_bool("MLFLOW_ERROR_EXTRA_KEYS", default=True)
# Reported by /version (the MLflow release whose REST API this server speaks).
MLFLOW_COMPATIBLE_VERSION = "3.18.0"

# --- the MLflow web UI: MLflow's own bundle, served with an injected SharingHub script -----------
# `manage.py fetch_ui` takes it from this release's wheel: the client release pinned in pyproject.toml's test
# extra (the newest the package index serves complete); tests/ui keeps the two equal.
MLFLOW_UI_VERSION = "3.17.2"
# Where fetch_ui puts the bundle and the server reads it; the image sets a folder outside its data volume.
MLFLOW_UI_DIR = Path(env_str("MLFLOW_UI_DIR", default="data/ui")).resolve()  # relative: to the working directory
# /graphql answers at most this many root fields per query, and aliases per selection set (MLflow's names).
MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS = env_int("MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS", default=10, minimum=1)
MLFLOW_SERVER_GRAPHQL_MAX_ALIASES = env_int("MLFLOW_SERVER_GRAPHQL_MAX_ALIASES", default=10)

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "mlflow_sh.webui.static.ScriptPrefixedStaticFilesStorage"},
    "artifacts": artifact_storage(
        MLFLOW_ARTIFACTS_DESTINATION,
        variable="MLFLOW_ARTIFACTS_DESTINATION",
        endpoint_url=MLFLOW_S3_ENDPOINT_URL,
        region=env_str("AWS_REGION") or env_str("AWS_DEFAULT_REGION"),
        addressing_style=env_str("AWS_S3_ADDRESSING_STYLE", default="path" if MLFLOW_S3_ENDPOINT_URL else "auto"),
        verify_tls=not env_bool("MLFLOW_S3_IGNORE_TLS", default=False),
    ),
}

# --- permissions: SharingHub or GitLab decide; neither set is open mode -----------------------
SHARINGHUB_URL = env_str("SHARINGHUB_URL").rstrip("/")
GITLAB_URL = env_str("GITLAB_URL").rstrip("/")
PERMISSION_MODE = "gitlab" if GITLAB_URL else "sharinghub" if SHARINGHUB_URL else "open"
SHARINGHUB_SESSION_COOKIE = env_str("SHARINGHUB_SESSION_COOKIE", default="sharinghub-session")
SHARINGHUB_AUTH_DEFAULT_TOKEN = env_bool("SHARINGHUB_AUTH_DEFAULT_TOKEN", default=False)
SHARINGHUB_AUTH_CACHE_TIMEOUT = env_float("SHARINGHUB_AUTH_CACHE_TIMEOUT", default=60.0)
SHARINGHUB_STAC_COLLECTION = env_str("SHARINGHUB_STAC_COLLECTION", default="ai-model")
PROJECT_CACHE_TIMEOUT = env_float("PROJECT_CACHE_TIMEOUT", default=30.0)
PROJECT_TAG = env_str("PROJECT_TAG", default="project")
LOGIN_AUTO_REDIRECT = env_bool("LOGIN_AUTO_REDIRECT", default=False)
GITLAB_MANDATORY_TOPICS = [t.strip() for t in env_str("GITLAB_MANDATORY_TOPICS").split(",") if t.strip()]
GITLAB_OAUTH_CLIENT_ID = env_str("GITLAB_OAUTH_CLIENT_ID")
GITLAB_OAUTH_CLIENT_SECRET = env_str("GITLAB_OAUTH_CLIENT_SECRET")
# Seconds to wait for SharingHub or GitLab: a slow upstream must answer 503, not hold the request.
PERMISSION_CONNECT_TIMEOUT = env_float("PERMISSION_CONNECT_TIMEOUT", default=3.0)
PERMISSION_READ_TIMEOUT = env_float("PERMISSION_READ_TIMEOUT", default=10.0)

CACHES = {"default": cache_from_url(env_str("CACHE_URL"), variable="CACHE_URL")}

# --- STAC publication: on when STAC_PUBLISH_URL is set ------------------------------------------
STAC_PUBLISH_URL = env_str("STAC_PUBLISH_URL").rstrip("/")
STAC_PUBLISH_COLLECTION = env_str("STAC_PUBLISH_COLLECTION", default=SHARINGHUB_STAC_COLLECTION)
STAC_PUBLISH_AUTH = env_str("STAC_PUBLISH_AUTH", default="none")
STAC_PUBLISH_AUTH_HEADER = env_str("STAC_PUBLISH_AUTH_HEADER", default="Authorization")
STAC_PUBLISH_TOKEN = env_str("STAC_PUBLISH_TOKEN")
STAC_PUBLISH_TIMEOUT = env_float("STAC_PUBLISH_TIMEOUT", default=10.0)
STAC_PUBLISH_MAX_BACKOFF = env_float("STAC_PUBLISH_MAX_BACKOFF", default=300.0)
STAC_PUBLISH_ITEM_ID_TEMPLATE = env_str("STAC_PUBLISH_ITEM_ID_TEMPLATE", default="mlflow-{project_id}-{model_slug}-v{version}")
STAC_PUBLISH_MLM_SCHEMA = env_str("STAC_PUBLISH_MLM_SCHEMA", default="https://stac-extensions.github.io/mlm/v1.5.2/schema.json")
STAC_PUBLIC_BASE_URL = env_str("STAC_PUBLIC_BASE_URL").rstrip("/")
# A model has no footprint; targets that require one (pgstac) get this bbox, e.g. "-180,-90,180,90".
STAC_PUBLISH_BBOX = env_bbox("STAC_PUBLISH_BBOX")
STAC_PUBLISH_GEOMETRY = bbox_polygon(STAC_PUBLISH_BBOX)

# --- Django -----------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "mlflow_sh",
    "tracking",
    "registry",
    "permissions",
    "stac_publish",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "mlflow_sh.middleware.ForwardedPrefixMiddleware",
    "permissions.middleware.ProjectViewMiddleware",
    # After the project view: /<project>/tracking/static-files/... is the UI bundle too.
    "mlflow_sh.webui.static.StaticFilesMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# Only the admin shows messages, and it has a session: the default cookie storage would build a signer for
# every request, API calls included.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "mlflow_sh.urls"
WSGI_APPLICATION = "mlflow_sh.wsgi.application"
APPEND_SLASH = False  # MLflow paths have no trailing slash; a redirect would lose POST bodies

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# A relative SQLite path is relative to the working directory, as MLflow's (and the artifact folder's) are.
DATABASES = {"default": database_from_uri(MLFLOW_BACKEND_STORE_URI, variable="MLFLOW_BACKEND_STORE_URI", base_dir=Path.cwd())}
DATABASES["default"]["ATOMIC_REQUESTS"] = True  # one request, one transaction
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# log-batch bodies are limited to 1 MB by MLflow; other bodies get a little more room.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Absolute: the storage below prefixes each URL with the request's X-Script-Name (Django would fix one prefix
# for the life of the process).
STATIC_URL = "/static/"
# Nothing is collected: whitenoise serves the installed apps' static files (the admin's) where they are,
# found once at start, so the image needs no collectstatic step and no STATIC_ROOT.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_MIMETYPES = {".cjs": "text/javascript"}  # the UI bundle loads one; octet-stream would be refused

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "mlflow_sh.errors.mlflow_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["mlflow_sh.wire.MlflowJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [],  # RpcView decodes bodies itself, by MLflow's rules
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", default="INFO").upper()},
    "loggers": {"django.request": {"level": "ERROR"}},
}
MLFLOW_WORKSPACE = "default"  # 3.18 names the (only) workspace in every experiment
