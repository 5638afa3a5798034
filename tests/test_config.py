"""Configuration from the environment: accepted spellings, one clear line for a wrong value, masked secrets."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from mlflow_sh.env import database_from_uri, env_bool, env_int, masked_uri

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"])
def test_postgres_uris_as_mlflow_users_write_them(scheme):
    config = database_from_uri(f"{scheme}://u:p%40ss@db.example:6543/mlflow?sslmode=require", variable="X", base_dir=ROOT)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["USER"], config["PASSWORD"], config["HOST"], config["PORT"], config["NAME"]) == (
        "u", "p@ss", "db.example", "6543", "mlflow")
    assert config["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": 2, "sslmode": "require"}


@pytest.mark.parametrize("query, threshold", [("prepare_threshold=0", 0), ("prepare_threshold=none", None),
                                              ("prepare_threshold=None", None), ("", 2)])
def test_prepared_statements_on_by_default_and_switchable_for_poolers(query, threshold):
    config = database_from_uri(f"postgresql://h/mlflow?{query}", variable="X", base_dir=ROOT)
    assert config["OPTIONS"]["prepare_threshold"] == threshold


def test_a_wrong_prepare_threshold_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="MLFLOW_BACKEND_STORE_URI: prepare_threshold must be a number"):
        database_from_uri("postgresql://h/mlflow?prepare_threshold=often", variable="MLFLOW_BACKEND_STORE_URI",
                          base_dir=ROOT)


def test_sqlite_paths_relative_and_absolute():
    assert database_from_uri("sqlite:///data/m.db", variable="X", base_dir=ROOT)["NAME"] == str(ROOT / "data/m.db")
    assert database_from_uri("sqlite:////tmp/m.db", variable="X", base_dir=ROOT)["NAME"] == "/tmp/m.db"


@pytest.mark.parametrize("uri", ["mysql://x/y", "postgresql://host:5432/", "sqlite://", "nonsense"])
def test_bad_uris_name_the_variable(uri):
    with pytest.raises(ImproperlyConfigured, match="MLFLOW_BACKEND_STORE_URI"):
        database_from_uri(uri, variable="MLFLOW_BACKEND_STORE_URI", base_dir=ROOT)


def test_masked_uri_hides_the_password():
    assert masked_uri("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert masked_uri("sqlite:///data/m.db") == "sqlite:///data/m.db"


def test_typed_readers(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "yes")
    assert env_bool("SOME_FLAG") is True
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env_bool("SOME_FLAG")
    monkeypatch.setenv("MLFLOW_PORT", "abc")
    with pytest.raises(ImproperlyConfigured, match="MLFLOW_PORT"):
        env_int("MLFLOW_PORT", default=5000)


def test_a_wrong_value_stops_the_server_with_one_line():
    env = {"PATH": "/usr/bin:/bin", "MLFLOW_BACKEND_STORE_URI": "mysql://root@localhost/x", "DJANGO_SETTINGS_MODULE": "mlflow_sh.settings"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "MLFLOW_BACKEND_STORE_URI has an unsupported scheme 'mysql'" in result.stderr.strip().splitlines()[-1]


def test_every_command_has_help():
    result = subprocess.run([sys.executable, "manage.py", "serve", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and "MLFLOW_PORT" in result.stdout


def test_stac_bbox_becomes_a_polygon(monkeypatch):
    from mlflow_sh.env import bbox_polygon, env_bbox

    monkeypatch.setenv("STAC_PUBLISH_BBOX", "-180,-90,180,90")
    bbox = env_bbox("STAC_PUBLISH_BBOX")
    assert bbox == [-180.0, -90.0, 180.0, 90.0]
    assert bbox_polygon(bbox)["coordinates"][0][0] == [-180.0, -90.0]
    monkeypatch.setenv("STAC_PUBLISH_BBOX", "1,2,3")
    with pytest.raises(ImproperlyConfigured, match="STAC_PUBLISH_BBOX"):
        env_bbox("STAC_PUBLISH_BBOX")
