"""The outbox for operators: state, attempts, last error and next try, with retry and drop actions."""

from django.contrib import admin
from django.utils import timezone

from stac_publish.models import PublicationJob


@admin.register(PublicationJob)
class PublicationJobAdmin(admin.ModelAdmin):
    list_display = ("id", "item_id", "action", "state", "attempts", "last_status", "next_attempt_at", "short_error")
    list_filter = ("state", "action")
    search_fields = ("item_id", "last_error")
    readonly_fields = [field.name for field in PublicationJob._meta.fields]
    actions = ["retry_now", "drop"]

    def has_add_permission(self, request):
        return False  # jobs are recorded with the registry change they publish; a hand-made one has no version

    @admin.display(description="last error")
    def short_error(self, job):
        return job.last_error[:120]

    @admin.action(description="Retry now")
    def retry_now(self, request, queryset):
        count = queryset.exclude(state=PublicationJob.DONE).update(
            state=PublicationJob.PENDING, next_attempt_at=timezone.now(), leased_until=None)
        self.message_user(request, f"{count} jobs will be retried.")

    @admin.action(description="Drop (mark done without sending)")
    def drop(self, request, queryset):
        count = queryset.exclude(state=PublicationJob.DONE).update(state=PublicationJob.DONE, last_error="dropped by an operator")
        self.message_user(request, f"{count} jobs dropped.")
