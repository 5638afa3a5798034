"""The outbox: one row per publication to do, written in the transaction of the registry change."""

from django.db import models


class PublicationJob(models.Model):
    CREATE, PUT, DELETE = "create", "put", "delete"
    PENDING, DONE, FAILED, HELD = "pending", "done", "failed", "held"

    # The version it is about; gone for a delete once the version (or its model) is deleted.
    model_version = models.ForeignKey("registry.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="publication_jobs")
    item_id = models.CharField(max_length=255)  # decided when recorded: a rename changes it
    action = models.CharField(max_length=10, choices=[(a, a) for a in (CREATE, PUT, DELETE)])
    state = models.CharField(max_length=10, default=PENDING,
                             choices=[(s, s) for s in (PENDING, DONE, FAILED, HELD)])
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    leased_until = models.DateTimeField(null=True, blank=True)  # a worker holds it until then
    last_status = models.IntegerField(null=True, blank=True)  # HTTP status of the last attempt
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "stac_publication_jobs"
        indexes = [models.Index(fields=["state", "item_id", "id"], name="stac_jobs_pending_per_item")]

    def __str__(self):
        return f"{self.action} {self.item_id} ({self.state})"
