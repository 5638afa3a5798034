"""Django admin for operators: experiments and runs, read-only, searchable and filtered."""

from django.contrib import admin

from mlflow_sh.admin import ReadOnlyModelAdmin, ReadOnlyTabularInline
from tracking.models import Experiment, ExperimentTag, Run, RunTag

RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")


class ExperimentTagInline(ReadOnlyTabularInline):
    model = ExperimentTag


@admin.register(Experiment)
class ExperimentAdmin(ReadOnlyModelAdmin):
    list_display = ("experiment_id", "name", "project", "lifecycle_stage", "artifact_location")
    list_filter = ("lifecycle_stage", "project")
    search_fields = ("name", "project")
    inlines = [ExperimentTagInline]


class RunTagInline(ReadOnlyTabularInline):
    model = RunTag


# The runs table is the big one: its filters take their choices from constants and from experiments, never
# from a DISTINCT over every run (Django's default for a plain column or a related one).
class RunStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(status, status.capitalize()) for status in RUN_STATUSES]

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


class RunProjectFilter(admin.SimpleListFilter):
    title = "project"
    parameter_name = "project"

    def lookups(self, request, model_admin):
        projects = Experiment.objects.exclude(project=None).order_by("project").values_list("project", flat=True)
        return [(project, project) for project in projects.distinct()]

    def queryset(self, request, queryset):
        return queryset.filter(experiment__project=self.value()) if self.value() else queryset


@admin.register(Run)
class RunAdmin(ReadOnlyModelAdmin):
    list_display = ("run_uuid", "name", "experiment", "status", "lifecycle_stage", "user_id")
    list_filter = (RunStatusFilter, "lifecycle_stage", RunProjectFilter)
    search_fields = ("run_uuid", "name", "user_id", "experiment__name")
    list_select_related = ("experiment",)  # one query per page, not one per run
    show_full_result_count = False  # no second COUNT(*) of every run on each filtered page
    inlines = [RunTagInline]
