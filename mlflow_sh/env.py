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
        options: dict = {"server_side_binding": True}  # parameters travel apart from SQL: no quoting of big arrays
        options.update(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(database),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
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
