"""Delivers the outbox to the STAC API: one job at a time per item, in order, retried until it lands.

A job is leased in a short transaction, sent outside any transaction, and its outcome recorded. A worker
killed mid-delivery leaves a lease that expires: the job is sent again, which is safe because every
operation is idempotent (POST answered 409 becomes PUT, PUT answered 404 becomes POST, DELETE 404 is done).
"""

import logging
import random
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from stac_publish import items
from stac_publish.eligibility import publishable_item_ids
from stac_publish.models import PublicationJob

logger = logging.getLogger("mlflow_sh.stac_publish")
RETRYABLE = {408, 429}


class Failure(Exception):
    def __init__(self, detail: str, status: int | None = None):
        super().__init__(detail)
        self.status = status


class Retry(Failure):
    """A failure worth another attempt later (network, 408, 429, 5xx)."""


class TimedOut(Retry):
    """No answer in time: the target may still apply the request later, out of order."""


class Refused(Failure):
    """A failure no retry will fix (other 4xx): the job fails, visible to operators."""


def claim_next_job(due_by=None) -> PublicationJob | None:
    """The oldest job due by then (default now) whose item has no older pending job, leased to this worker."""
    now = timezone.now()
    due_by = due_by or now
    # Held and failed jobs do not block: a later job sends the item's current state anyway.
    older_unfinished = PublicationJob.objects.filter(
        item_id=OuterRef("item_id"), id__lt=OuterRef("id"), state=PublicationJob.PENDING
    )
    with transaction.atomic():
        job = (
            PublicationJob.objects.select_for_update(skip_locked=True)
            .filter(state=PublicationJob.PENDING, next_attempt_at__lte=due_by)
            .exclude(leased_until__gt=now)
            .exclude(Exists(older_unfinished))
            .order_by("id").first()
        )
        if job is not None:
            job.leased_until = now + timedelta(seconds=4 * settings.STAC_PUBLISH_TIMEOUT + 30)
            job.save(update_fields=["leased_until", "updated_at"])
    return job


def deliver(job: PublicationJob) -> None:
    """One attempt; the outcome (done, retry later, failed, held) is recorded on the job."""
    job.attempts += 1
    try:
        status = _send(job)
        job.state, job.last_status, job.last_error = PublicationJob.DONE, status, ""
        if job.action != PublicationJob.DELETE:
            items.clear_problem(job.model_version_id)
        PublicationJob.objects.filter(item_id=job.item_id, id__lt=job.id, state__in=[PublicationJob.HELD, PublicationJob.FAILED]
                                      ).update(state=PublicationJob.DONE, last_error="superseded by a later publication")
    except items.NotPublishable as reason:
        job.state, job.last_error = PublicationJob.HELD, str(reason)
        items.record_problem(job.model_version_id, str(reason))
    except Refused as err:
        job.state, job.last_error, job.last_status = PublicationJob.FAILED, str(err), err.status
    except Retry as err:
        job.last_error, job.last_status = str(err), err.status
        job.next_attempt_at = timezone.now() + timedelta(seconds=backoff_seconds(job.attempts))
        if isinstance(err, TimedOut):
            _check_again_later(job)
    job.leased_until = None
    job.save()
    logger.info("stac %s %s: %s (attempt %d)%s", job.action, job.item_id, job.state, job.attempts,
                f": {job.last_error}" if job.last_error else "")


def _check_again_later(job: PublicationJob) -> None:
    """A request that timed out may land after a newer one: resend the item's current state once it has."""
    publishable = publishable_item_ids([job.model_version_id]) if job.model_version_id else {}
    action = PublicationJob.PUT if publishable.get(job.model_version_id) == job.item_id else PublicationJob.DELETE
    PublicationJob.objects.create(
        model_version_id=job.model_version_id, item_id=job.item_id, action=action,
        next_attempt_at=timezone.now() + timedelta(seconds=3 * settings.STAC_PUBLISH_TIMEOUT),
    )


def backoff_seconds(attempts: int) -> float:
    """Exponential, capped, with full jitter so that many jobs do not retry in lockstep."""
    ceiling = min(settings.STAC_PUBLISH_MAX_BACKOFF, 2 ** min(attempts, 20))
    return random.uniform(ceiling / 2, ceiling)


def _send(job: PublicationJob) -> int:
    if job.action == PublicationJob.DELETE:
        return _request("DELETE", _item_url(job.item_id), ok_if={404})
    if job.model_version_id is None:
        return 0  # the version is gone; the delete recorded after this job removes the item
    item = items.build_item(job.model_version_id, job.item_id)
    if item is None:
        return 0  # no longer publishable (deleted, renamed): a later job says what to do
    if job.action == PublicationJob.CREATE:
        status = _request("POST", _collection_url(), json=item, fallback_on={409})
        return _request("PUT", _item_url(job.item_id), json=item) if status == 409 else status
    status = _request("PUT", _item_url(job.item_id), json=item, fallback_on={404})
    return _request("POST", _collection_url(), json=item) if status == 404 else status


def _collection_url() -> str:
    return f"{settings.STAC_PUBLISH_URL}/collections/{settings.STAC_PUBLISH_COLLECTION}/items"


def _item_url(item_id: str) -> str:
    return f"{_collection_url()}/{item_id}"


def auth_headers() -> dict:
    headers = {"Accept": "application/geo+json, application/json"}
    if settings.STAC_PUBLISH_AUTH == "bearer":
        headers["Authorization"] = f"Bearer {settings.STAC_PUBLISH_TOKEN}"
    elif settings.STAC_PUBLISH_AUTH == "header":
        headers[settings.STAC_PUBLISH_AUTH_HEADER] = settings.STAC_PUBLISH_TOKEN
    return headers


def _request(method: str, url: str, *, json=None, ok_if=frozenset(), fallback_on=frozenset()) -> int:
    try:
        response = requests.request(method, url, json=json, headers=auth_headers(), timeout=settings.STAC_PUBLISH_TIMEOUT)
    except requests.Timeout:
        raise TimedOut(f"{method} {url}: no answer within {settings.STAC_PUBLISH_TIMEOUT} s") from None
    except requests.RequestException as err:
        raise Retry(f"{method} {url}: {type(err).__name__}") from None
    status = response.status_code
    if status < 300 or status in ok_if or status in fallback_on:
        return status
    detail = f"{method} {url}: HTTP {status} {response.text[:500]}"
    if status in RETRYABLE or status >= 500:
        raise Retry(detail, status)
    raise Refused(detail, status)


def run_once() -> int:
    """Delivers every job due when it starts (retries scheduled meanwhile wait for the next pass)."""
    started, attempts = timezone.now(), 0
    while (job := claim_next_job(due_by=started)) is not None:
        deliver(job)
        attempts += 1
    return attempts
