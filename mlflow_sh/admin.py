"""What the admin pages of MLflow's entities share: they show, search and filter, and never change anything."""

from django.contrib import admin


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """MLflow's entities change through the API only: its services keep what a form would bypass (latest metrics,
    stage archiving, the ` (<project id>)` name suffix, the STAC outbox of registry changes)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTabularInline(admin.TabularInline):
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
