#!/usr/bin/env bash
# A real transactional STAC API for the opt-in end-to-end test (tests/stac_publish/test_pgstac_e2e.py):
# stac-fastapi-pgstac on the local PostgreSQL with PostGIS, in its own virtualenv (never the project's .venv).
#
#   bash tests/stac_publish/pgstac_stack.sh install   # Debian's PostGIS for PostgreSQL 15 + the virtualenv
#   bash tests/stac_publish/pgstac_stack.sh start     # fresh database, pypgstac migrate, uvicorn, collection
#   bash tests/stac_publish/pgstac_stack.sh stop
#   MLFLOW_SH_PGSTAC=1 PGSTAC_URL=http://127.0.0.1:8082 .venv/bin/python -m pytest -m pgstac tests/stac_publish
#
# The test starts and stops the stack itself when PGSTAC_URL is not set (it needs `install` done first).
# Settings (environment): PGSTAC_VENV (/tmp/pgstac-venv), PGSTAC_PG (postgresql://postgres@127.0.0.1:5432),
# PGSTAC_DB (mlflow_sh_pgstac), PGSTAC_PORT (8082), PGSTAC_COLLECTION (ai-model), PGSTAC_RUN (/tmp/pgstac-run).
# Known to work with: postgresql-15-postgis-3 3.3.2, pypgstac 0.10.0, stac-fastapi-pgstac 7.2.0, uvicorn 0.54.
set -euo pipefail

VENV="${PGSTAC_VENV:-/tmp/pgstac-venv}"
PG="${PGSTAC_PG:-postgresql://postgres@127.0.0.1:5432}"
DB="${PGSTAC_DB:-mlflow_sh_pgstac}"
PORT="${PGSTAC_PORT:-8082}"
COLLECTION="${PGSTAC_COLLECTION:-ai-model}"
RUN="${PGSTAC_RUN:-/tmp/pgstac-run}"
URL="http://127.0.0.1:${PORT}"

# PG* variables for the app (stac-fastapi-pgstac reads PGUSER/PGPASSWORD/PGHOST/PGPORT/PGDATABASE).
pg_parts() {
  python3 - "$PG" <<'EOF'
import sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
print("|".join([u.username or "postgres", u.password or "", u.hostname or "127.0.0.1", str(u.port or 5432)]))
EOF
}

install() {
  if ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then
    apt-get update
    apt-get install -y postgresql-15-postgis-3
  fi
  if [ ! -x "$VENV/bin/uvicorn" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "stac-fastapi.pgstac>=7,<8" "pypgstac[psycopg]>=0.9,<0.11" "uvicorn>=0.30"
  fi
  "$VENV/bin/pip" list 2>/dev/null | grep -iE '^(pypgstac|stac-fastapi-pgstac|uvicorn) '
}

start() {
  mkdir -p "$RUN"
  stop >/dev/null 2>&1 || true
  psql "$PG/postgres" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
  psql "$PG/$DB" -v ON_ERROR_STOP=1 -qc "CREATE EXTENSION IF NOT EXISTS postgis"
  "$VENV/bin/pypgstac" migrate --dsn "$PG/$DB"
  IFS="|" read -r user password host port < <(pg_parts)
  PGUSER="$user" PGPASSWORD="$password" PGHOST="$host" PGPORT="$port" PGDATABASE="$DB" \
    ENABLE_TRANSACTIONS_EXTENSIONS=true \
    nohup "$VENV/bin/uvicorn" stac_fastapi.pgstac.app:create_app --factory --host 127.0.0.1 --port "$PORT" \
    >"$RUN/uvicorn.log" 2>&1 &
  echo $! >"$RUN/uvicorn.pid"
  for _ in $(seq 1 100); do
    if curl -fsS "$URL/conformance" >/dev/null 2>&1; then break; fi
    sleep 0.2
  done
  curl -fsS "$URL/conformance" | grep -q "extensions/transaction" || { cat "$RUN/uvicorn.log"; exit 1; }
  curl -fsS -o /dev/null -X POST "$URL/collections" -H 'Content-Type: application/json' -d @- <<EOF
{"type": "Collection", "id": "$COLLECTION", "stac_version": "1.0.0", "description": "MLflow model versions",
 "license": "proprietary", "links": [],
 "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[null, null]]}}}
EOF
  echo "PGSTAC_URL=$URL"
}

stop() {
  if [ -f "$RUN/uvicorn.pid" ]; then
    kill "$(cat "$RUN/uvicorn.pid")" 2>/dev/null || true
    rm -f "$RUN/uvicorn.pid"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
