"""The tracking app: experiments, runs, metrics, params, tags, datasets."""

from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from tracking import artifacts, lookups  # noqa: F401  (registers LIKE / ILIKE, and the store reset)
