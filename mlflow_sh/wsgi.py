"""WSGI entry point for gunicorn: mlflow_sh.wsgi:application."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlflow_sh.settings")

application = get_wsgi_application()
