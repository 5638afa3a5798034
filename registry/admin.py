"""Django admin for operators: registered models and their versions, searchable, filtered by stage and tag."""

from django.contrib import admin

from registry.models import ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelAlias, RegisteredModelTag


class RegisteredModelTagInline(admin.TabularInline):
    model = RegisteredModelTag
    extra = 0


class RegisteredModelAliasInline(admin.TabularInline):
    model = RegisteredModelAlias
    extra = 0


class ModelVersionInline(admin.TabularInline):
    model = ModelVersion
    extra = 0
    fields = ("version", "current_stage", "source", "run_id", "status")
    readonly_fields = fields
    show_change_link = True


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "last_updated_timestamp")
    search_fields = ("name", "description")
    list_filter = ("tags__key",)
    inlines = [RegisteredModelTagInline, RegisteredModelAliasInline, ModelVersionInline]


class ModelVersionTagInline(admin.TabularInline):
    model = ModelVersionTag
    extra = 0


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("registered_model", "version", "current_stage", "status", "run_id", "source")
    list_filter = ("current_stage", "status", "tags__key")
    search_fields = ("registered_model__name", "run_id", "source")
    list_select_related = ("registered_model",)
    inlines = [ModelVersionTagInline]
