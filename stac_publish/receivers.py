"""Registry changes become outbox rows in the same transaction; nothing here touches the network."""

from django.conf import settings
from django.dispatch import receiver
from django.utils import timezone

from registry.signals import model_versions_changed
from stac_publish.eligibility import publishable_item_ids
from stac_publish.models import PublicationJob


@receiver(model_versions_changed)
def record_publication_jobs(sender, *, action, model_version_ids, **kwargs):
    if not settings.STAC_PUBLISH_URL:
        return  # publication is off: nothing recorded
    now = timezone.now()
    PublicationJob.objects.bulk_create([
        PublicationJob(model_version_id=pk, item_id=item_id, action=action, next_attempt_at=now)
        for pk, item_id in publishable_item_ids(model_version_ids).items()
    ])
