"""`manage.py stac_publish`: the worker that delivers registry changes to the STAC API."""

import time

import requests

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Min
from django.utils import timezone

from registry.models import ModelVersion
from stac_publish import publisher
from stac_publish.eligibility import publishable_item_ids
from stac_publish.models import PublicationJob


class Command(BaseCommand):
    help = ("Publish registered model versions as STAC items (STAC_PUBLISH_URL): runs until stopped, "
            "or once with --once; --backfill queues every current version; --lag reports the outbox.")

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="deliver what is due, then exit")
        parser.add_argument("--backfill", action="store_true", help="queue a publication of every current version first")
        parser.add_argument("--lag", action="store_true", help="print the outbox state and exit")
        parser.add_argument("--poll", type=float, default=2.0, help="seconds between looks at an empty outbox")

    def handle(self, *args, once, backfill, lag, poll, **options):
        if lag:
            self.report_lag()
            return
        if not settings.STAC_PUBLISH_URL:
            raise CommandError("STAC_PUBLISH_URL is not set: publication is off, there is nothing to deliver.")
        if backfill:
            queued = self.backfill()
            self.stdout.write(f"queued {queued} versions")
        self.check_collection()
        self.stdout.write(f"publishing to {settings.STAC_PUBLISH_URL} collection {settings.STAC_PUBLISH_COLLECTION}")
        while True:
            attempts = publisher.run_once()
            if once:
                self.stdout.write(f"{attempts} attempts")
                return
            if not attempts:
                time.sleep(poll)

    def check_collection(self) -> None:
        """A missing collection is a configuration error, not an outage to wait out (pgstac answers it with 500s)."""
        url = f"{settings.STAC_PUBLISH_URL}/collections/{settings.STAC_PUBLISH_COLLECTION}"
        try:
            response = requests.get(url, headers=publisher.auth_headers(), timeout=settings.STAC_PUBLISH_TIMEOUT)
        except requests.RequestException as err:
            self.stderr.write(f"the STAC API is not reachable yet ({type(err).__name__}); jobs wait for it")
            return
        if response.status_code == 404:
            raise CommandError(f"collection {settings.STAC_PUBLISH_COLLECTION} does not exist at {settings.STAC_PUBLISH_URL}")

    def backfill(self) -> int:
        now = timezone.now()
        ids = publishable_item_ids(ModelVersion.objects.values_list("pk", flat=True))
        PublicationJob.objects.bulk_create([
            PublicationJob(model_version_id=pk, item_id=item_id, action=PublicationJob.PUT, next_attempt_at=now)
            for pk, item_id in ids.items()
        ])
        return len(ids)

    def report_lag(self) -> None:
        for row in PublicationJob.objects.values("state").annotate(jobs=Count("id"), oldest=Min("created_at")).order_by("state"):
            age = f", oldest {(timezone.now() - row['oldest']).total_seconds():.0f}s ago" if row["oldest"] else ""
            self.stdout.write(f"{row['state']}: {row['jobs']} jobs{age}")
