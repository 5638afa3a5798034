"""STAC publication: every registered model version as an MLM item in a STAC API, through an outbox."""

from django.apps import AppConfig


class StacPublishConfig(AppConfig):
    name = "stac_publish"

    def ready(self):
        from stac_publish import checks, receivers  # noqa: F401  (registers the outbox receiver and the checks)
