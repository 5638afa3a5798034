"""Typed readers for the environment: a wrong value fails at start with one line naming the variable."""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+pg8000"}


def env_str(name: str, *, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, *, default: bool = False) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false).")


def env_int(name: str, *, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


def env_float(name: str, *, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number of seconds.") from None


def env_bbox(name: str) -> list[float] | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        west, south, east, north = (float(part) for part in raw.split(","))
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} must be four numbers: west,south,east,north.") from None
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a bounding box in degrees (west,south,east,north).")
    return [west, south, east, north]


def bbox_polygon(bbox: list[float] | None) -> dict | None:
    if bbox is None:
        return None
    west, south, east, north = bbox
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def cache_from_url(url: str, *, variable: str) -> dict:
    """Django's cache: Redis when the URL names one (shared by workers and pods), else local memory."""
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mlflow-sharinghub"}
    scheme = urlsplit(url).scheme
    if scheme in {"redis", "rediss", "unix"}:
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    raise ImproperlyConfigured(f"{variable} must be a redis:// or rediss:// URL, not {scheme or 'nothing'}://.")


DEFAULT_PREPARE_THRESHOLD = 2


def _prepare_threshold(value: int | str, variable: str) -> int | None:
    """psycopg's prepare_threshold, ours or from the URI's query: a count, or `none` for a pooler that cannot keep
    prepared statements (PgBouncer before 1.21 in transaction mode)."""
    if isinstance(value, int):
        return value
    if value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{variable}: prepare_threshold must be a number or none, not {value!r}.") from None


def database_from_uri(uri: str, *, variable: str, base_dir: Path) -> dict:
    """Django DATABASES["default"] from an MLflow backend-store URI (SQLAlchemy spelling accepted)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative/path, sqlite:////absolute/path, as SQLAlchemy reads them
        raw_path = uri.split(":///", 1)[1] if ":///" in uri else ""
        if not raw_path or raw_path == ":memory:":
            raise ImproperlyConfigured(f"{variable} must name a SQLite file, e.g. sqlite:///data/mlflow.db.")
        path = Path(raw_path)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(path if path.is_absolute() else base_dir / path),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    if scheme in POSTGRES_SCHEMES:
        database = parts.path.lstrip("/")
        if not database:
            raise ImproperlyConfigured(f"{variable} must name a database, e.g. postgresql://user:pass@host:5432/mlflow.")
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"{variable} has an invalid port.") from None
        options: dict = {
            "server_side_binding": True,  # parameters travel apart from SQL: no quoting of big arrays
            # A statement run twice on a connection is prepared there: PostgreSQL then stops planning the searches
            # and reads, whose planning costs more than their execution. Our SQL texts repeat with bound values.
            "prepare_threshold": DEFAULT_PREPARE_THRESHOLD,
        }
        options.update(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
        options["prepare_threshold"] = _prepare_threshold(options["prepare_threshold"], variable)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(database),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": False,  # a SELECT 1 per request costs more than one failed request after a restart
        }
    raise ImproperlyConfigured(
        f"{variable} has an unsupported scheme {scheme or '(none)'!r}: use postgresql://… or sqlite:///…"
    )


def masked_uri(uri: str) -> str:
    """The URI with its password replaced, for logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def artifact_storage(destination: str, *, variable: str, endpoint_url: str, region: str, addressing_style: str,
                     verify_tls: bool) -> dict:
    """A STORAGES entry for the artifact root: s3://bucket/prefix through django-storages, else a local folder."""
    parts = urlsplit(destination)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ImproperlyConfigured(f"{variable} must name a bucket, e.g. s3://mlflow-artifacts.")
        if addressing_style not in {"auto", "path", "virtual"}:
            raise ImproperlyConfigured(f"AWS_S3_ADDRESSING_STYLE={addressing_style!r} must be auto, path or virtual.")
        from botocore.config import Config

        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": parts.netloc,
                "location": parts.path.strip("/"),
                "endpoint_url": endpoint_url or None,
                "region_name": region or None,
                "addressing_style": addressing_style,
                "verify": verify_tls,
                "file_overwrite": True,  # a PUT replaces the artifact, as MLflow's proxy does
                "default_acl": None,
                # An unreachable S3 fails in seconds with a clear error instead of hanging a request.
                # read_timeout bounds each socket read, not a whole transfer: long downloads are not cut.
                "client_config": Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"}),
                "transfer_config": _streaming_transfer_config(),
            },
        }
    if parts.scheme not in {"", "file"}:
        raise ImproperlyConfigured(f"{variable} must be a folder or s3://bucket/prefix, not {parts.scheme}://.")
    location = Path(parts.path if parts.scheme == "file" else destination).expanduser().resolve()
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(location), "allow_overwrite": True},
    }


def _streaming_transfer_config():
    """A request body cannot seek, so s3transfer holds its parts in memory: at most 2 queued parts of 8 MiB
    (its default of 10 made a 1 GiB upload grow the worker by ~100 MiB), sent by 2 threads."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=2)
    config.max_in_memory_upload_chunks = 2  # read by s3transfer; TransferConfig() does not take it as an argument
    return config
