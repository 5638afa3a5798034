"""Gunicorn settings, from the same environment variables as the Django settings."""

import os

bind = f"{os.environ.get('MLFLOW_HOST', '127.0.0.1')}:{os.environ.get('MLFLOW_PORT', '5000')}"
workers = int(os.environ.get("MLFLOW_WORKERS", "4"))
# Threads, not sync workers: keep-alive connections for clients that log in tight loops, and a slow
# upload or download occupies one thread, not a whole worker.
worker_class = "gthread"
threads = int(os.environ.get("MLFLOW_THREADS", "4"))
timeout = int(os.environ.get("MLFLOW_WORKER_TIMEOUT", "120"))
keepalive = 30
accesslog = os.environ.get("MLFLOW_ACCESS_LOG", "-") or None
errorlog = "-"
wsgi_app = "mlflow_sh.wsgi:application"
# Workers prove they are alive by touching a file: on tmpfs when there is one, since a container's /tmp may be
# read-only (readOnlyRootFilesystem) or a slow overlay on which the touch can stall the worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Gunicorn 25+ opens a control socket in $HOME by default: nothing uses it, a container's home may be read-only,
# and two servers sharing a home would take over (and on exit delete) each other's socket.
control_socket_disable = True


def on_starting(server):
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlflow_sh.settings")
    django.setup()
    from mlflow_sh.startup import log_configuration

    log_configuration()
    server.log.info("serving on http://%s with %d workers x %d threads", bind, workers, threads)


def post_worker_init(worker):
    import gc

    # Search pages allocate tens of thousands of small dicts: move the loaded app out of the collector's
    # way and collect young objects less often, so full collections do not stall requests.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
