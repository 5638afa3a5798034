"""Tables of the model registry."""

from django.db import models

STAGES = ["None", "Staging", "Production", "Archived"]
DELETED_STAGE = "Deleted_Internal"  # a deleted version keeps its number, hidden from every read


class RegisteredModel(models.Model):
    name = models.CharField(max_length=256, unique=True)
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()
    description = models.TextField(null=True, blank=True)
    # The GitLab project owning it (mirrored as the PROJECT_TAG tag); permissions filter on this column.
    project = models.CharField(max_length=1024, null=True, blank=True, db_index=True)

    class Meta:
        db_table = "registered_models"
        indexes = [models.Index(fields=["-last_updated_timestamp"], name="registered_models_updated")]

    def __str__(self):
        return self.name


class RegisteredModelTag(models.Model):
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        db_table = "registered_model_tags"
        constraints = [models.UniqueConstraint(fields=["registered_model", "key"], name="registered_model_tags_key")]


class ModelVersion(models.Model):
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.IntegerField()
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()
    description = models.TextField(blank=True, default="")
    user_id = models.CharField(max_length=256, blank=True, null=True)
    current_stage = models.CharField(max_length=20, default="None")
    source = models.CharField(max_length=500)
    storage_location = models.CharField(max_length=500)  # where the files are: the source, resolved
    run_id = models.CharField(max_length=32, null=True, blank=True)
    run_link = models.CharField(max_length=500, blank=True, default="")
    model_id = models.CharField(max_length=64, null=True, blank=True)  # the logged model it was made from
    status = models.CharField(max_length=20, default="READY")
    status_message = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        db_table = "model_versions"
        constraints = [models.UniqueConstraint(fields=["registered_model", "version"], name="model_versions_number")]
        indexes = [
            models.Index(fields=["-last_updated_timestamp", "registered_model", "-version"], name="model_versions_default_order"),
            models.Index(fields=["run_id"], name="model_versions_run"),
        ]

    def __str__(self):
        return f"{self.registered_model_id} v{self.version}"


class ModelVersionTag(models.Model):
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        db_table = "model_version_tags"
        constraints = [models.UniqueConstraint(fields=["model_version", "key"], name="model_version_tags_key")]


class RegisteredModelAlias(models.Model):
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=256)
    version = models.IntegerField()

    class Meta:
        db_table = "registered_model_aliases"
        constraints = [models.UniqueConstraint(fields=["registered_model", "alias"], name="registered_model_aliases_alias")]
