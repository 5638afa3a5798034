"""Django admin for operators: registered models and versions, read-only, searchable, filtered by stage and tag."""

from django.contrib import admin

from mlflow_sh.admin import ReadOnlyModelAdmin, ReadOnlyTabularInline
from registry.models import ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelAlias, RegisteredModelTag


class RegisteredModelTagInline(ReadOnlyTabularInline):
    model = RegisteredModelTag


class RegisteredModelAliasInline(ReadOnlyTabularInline):
    model = RegisteredModelAlias


class ModelVersionInline(ReadOnlyTabularInline):
    model = ModelVersion
    fields = ("version", "current_stage", "source", "run_id", "status")
    show_change_link = True


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyModelAdmin):
    list_display = ("name", "project", "description", "last_updated_timestamp")
    search_fields = ("name", "description")
    list_filter = ("project", "tags__key")
    inlines = [RegisteredModelTagInline, RegisteredModelAliasInline, ModelVersionInline]


class ModelVersionTagInline(ReadOnlyTabularInline):
    model = ModelVersionTag


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyModelAdmin):
    list_display = ("registered_model", "version", "current_stage", "status", "run_id", "source")
    list_filter = ("current_stage", "status", "tags__key")
    search_fields = ("registered_model__name", "run_id", "source")
    list_select_related = ("registered_model",)  # one query per page, not one per version
    inlines = [ModelVersionTagInline]
