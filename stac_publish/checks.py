"""Configuration rules that span variables (run by `manage.py check`, which the container runs first)."""

from django.conf import settings
from django.core import checks


@checks.register("config")
def check_publication_settings(app_configs, **kwargs):
    errors = []
    if settings.STAC_PUBLISH_URL and not settings.STAC_PUBLIC_BASE_URL:
        errors.append(checks.Error(
            "STAC_PUBLIC_BASE_URL must be set when STAC_PUBLISH_URL is set.",
            hint="The external URL of this server, e.g. https://sharinghub.example.org/mlflow", id="stac_publish.E001"))
    if settings.STAC_PUBLISH_AUTH not in {"none", "bearer", "header"}:
        errors.append(checks.Error("STAC_PUBLISH_AUTH must be none, bearer or header.", id="stac_publish.E002"))
    if settings.STAC_PUBLISH_AUTH != "none" and not settings.STAC_PUBLISH_TOKEN:
        errors.append(checks.Error("STAC_PUBLISH_TOKEN must be set when STAC_PUBLISH_AUTH is not none.", id="stac_publish.E003"))
    return errors
