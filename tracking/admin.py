"""Django admin for operators: browse and search experiments and runs."""

from django.contrib import admin

from tracking.models import Experiment, ExperimentTag, Run, RunTag


class ExperimentTagInline(admin.TabularInline):
    model = ExperimentTag
    extra = 0


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("experiment_id", "name", "lifecycle_stage", "artifact_location")
    list_filter = ("lifecycle_stage",)
    search_fields = ("name",)
    inlines = [ExperimentTagInline]


class RunTagInline(admin.TabularInline):
    model = RunTag
    extra = 0


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("run_uuid", "name", "experiment", "status", "lifecycle_stage", "user_id")
    list_filter = ("status", "lifecycle_stage")
    search_fields = ("run_uuid", "name", "user_id")
    list_select_related = ("experiment",)
    inlines = [RunTagInline]
