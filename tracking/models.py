"""Tables of the tracking store: experiments, runs and what is logged to them."""

from django.db import models

ACTIVE, DELETED = "active", "deleted"
LIFECYCLE_STAGES = [(ACTIVE, ACTIVE), (DELETED, DELETED)]
RUN_STATUSES = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]


class Experiment(models.Model):
    experiment_id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=500, unique=True)  # unique among deleted ones too, as MLflow
    artifact_location = models.CharField(max_length=2048, blank=True)
    lifecycle_stage = models.CharField(max_length=32, choices=LIFECYCLE_STAGES, default=ACTIVE)
    creation_time = models.BigIntegerField()
    last_update_time = models.BigIntegerField()
    # The GitLab project owning it (mirrored as the PROJECT_TAG tag); permissions filter on this column.
    project = models.CharField(max_length=1024, null=True, blank=True, db_index=True)

    class Meta:
        db_table = "experiments"
        indexes = [models.Index(fields=["lifecycle_stage", "-creation_time"], name="experiments_stage_ctime")]

    def __str__(self):
        return f"{self.name} ({self.experiment_id})"


class ExperimentTag(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        db_table = "experiment_tags"
        constraints = [models.UniqueConstraint(fields=["experiment", "key"], name="experiment_tags_key")]


class Run(models.Model):
    run_uuid = models.CharField(max_length=32, primary_key=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=250, blank=True)
    user_id = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=20, default="RUNNING")
    start_time = models.BigIntegerField(null=True)
    end_time = models.BigIntegerField(null=True)
    deleted_time = models.BigIntegerField(null=True)
    artifact_uri = models.CharField(max_length=2048, blank=True)
    lifecycle_stage = models.CharField(max_length=32, choices=LIFECYCLE_STAGES, default=ACTIVE)

    class Meta:
        db_table = "runs"
        indexes = [
            # the default search order: experiment, stage, start_time DESC, run_uuid
            models.Index(fields=["experiment", "lifecycle_stage", "-start_time", "run_uuid"], name="runs_search_order"),
        ]

    def __str__(self):
        return self.run_uuid


class Metric(models.Model):
    """Every logged point; identical points are stored once (MLflow de-duplicates them silently)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_history")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)
    is_nan = models.BooleanField(default=False)
    model_id = models.CharField(max_length=64, blank=True)
    dataset_name = models.CharField(max_length=500, blank=True)
    dataset_digest = models.CharField(max_length=36, blank=True)

    class Meta:
        db_table = "metrics"
        constraints = [
            models.UniqueConstraint(
                fields=["run", "key", "timestamp", "step", "value", "is_nan"], name="metrics_point"
            )
        ]
        indexes = [  # a logged model's metrics (LoggedModel.data.metrics); most points belong to none
            models.Index(fields=["model_id", "key"], name="metrics_model", condition=~models.Q(model_id="")),
        ]


class LatestMetric(models.Model):
    """The latest point per (run, key), max by (step, timestamp, value): what runs/get returns and search uses."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)
    is_nan = models.BooleanField(default=False)

    class Meta:
        db_table = "latest_metrics"
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="latest_metrics_key")]
        indexes = [models.Index(fields=["key", "value"], name="latest_metrics_key_value")]


class Param(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        db_table = "params"
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="params_key")]


class RunTag(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        db_table = "tags"
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="tags_key")]


class Dataset(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=36)
    source_type = models.CharField(max_length=36)
    source = models.TextField()
    schema = models.TextField(blank=True)
    profile = models.TextField(blank=True)

    class Meta:
        db_table = "datasets"
        constraints = [models.UniqueConstraint(fields=["experiment", "name", "digest"], name="datasets_identity")]


class DatasetInput(models.Model):
    """A run used a dataset (run.inputs.dataset_inputs), with its input tags."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="dataset_inputs")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="inputs")

    class Meta:
        db_table = "inputs"
        constraints = [models.UniqueConstraint(fields=["run", "dataset"], name="inputs_run_dataset")]


class InputTag(models.Model):
    dataset_input = models.ForeignKey(DatasetInput, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=255)
    value = models.CharField(max_length=500)

    class Meta:
        db_table = "input_tags"
        constraints = [models.UniqueConstraint(fields=["dataset_input", "key"], name="input_tags_key")]


class ModelInput(models.Model):
    """A run used a logged model (run.inputs.model_inputs)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="model_inputs")
    model_id = models.CharField(max_length=64)

    class Meta:
        db_table = "model_inputs"
        constraints = [models.UniqueConstraint(fields=["run", "model_id"], name="model_inputs_run_model")]


class ModelOutput(models.Model):
    """A run produced a logged model at a step (run.outputs.model_outputs)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="model_outputs")
    model_id = models.CharField(max_length=64)
    step = models.BigIntegerField(default=0)

    class Meta:
        db_table = "model_outputs"
        constraints = [models.UniqueConstraint(fields=["run", "model_id", "step"], name="model_outputs_identity")]


LOGGED_MODEL_STATUSES = ["LOGGED_MODEL_STATUS_UNSPECIFIED", "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY",
                         "LOGGED_MODEL_UPLOAD_FAILED"]


class LoggedModel(models.Model):
    """An MLflow 3 logged model: what log_model records, with artifacts under its own location."""

    model_id = models.CharField(max_length=64, primary_key=True)  # "m-" + 32 hex
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="logged_models")
    name = models.CharField(max_length=500)
    artifact_location = models.CharField(max_length=2048)
    creation_timestamp_ms = models.BigIntegerField()
    last_updated_timestamp_ms = models.BigIntegerField()
    status = models.CharField(max_length=40, default="LOGGED_MODEL_PENDING")
    status_message = models.TextField(blank=True)
    lifecycle_stage = models.CharField(max_length=32, choices=LIFECYCLE_STAGES, default=ACTIVE)
    model_type = models.CharField(max_length=500, blank=True)
    source_run_id = models.CharField(max_length=32, blank=True)

    class Meta:
        db_table = "logged_models"
        indexes = [
            models.Index(fields=["experiment", "lifecycle_stage", "-creation_timestamp_ms", "model_id"],
                         name="logged_models_search_order"),
            models.Index(fields=["experiment", "name"], name="logged_models_name"),
        ]

    def __str__(self):
        return f"{self.name} ({self.model_id})"


class LoggedModelTag(models.Model):
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        db_table = "logged_model_tags"
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="logged_model_tags_key")]


class LoggedModelParam(models.Model):
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        db_table = "logged_model_params"
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="logged_model_params_key")]
