#!/bin/sh
# Entrypoint of the mlflow-sharinghub image.
#   `serve [--host H] [--port P] [--workers N]` (the image's CMD), or options alone: check the configuration,
#       migrate (one replica at a time), then serve with gunicorn and mlflow_sh/gunicorn.conf.py;
#   any other command runs as given, e.g. `python manage.py stac_publish` for the STAC publication worker.
set -eu

case "${1:-serve}" in
    serve) if [ "$#" -gt 0 ]; then shift; fi ;;
    -*) ;;  # options of serve: `docker run IMAGE --workers 8`
    *) exec "$@" ;;
esac

# Gunicorn runs no system checks: a wrong setting stops the container here, with its reason, instead of failing
# requests later. Deployment warnings are printed and do not stop it (TLS ends at the ingress).
python -m django check --deploy --fail-level ERROR
# Replicas starting together take turns on a database lock; the later ones find nothing left to apply.
python -m django migrate_locked
# exec, and `serve` execs gunicorn in turn: gunicorn's master keeps this PID (1 in the container), so SIGTERM
# reaches it and it shuts down gracefully, letting requests in flight finish.
exec python -m django serve --no-migrate "$@"
