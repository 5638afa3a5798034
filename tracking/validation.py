"""MLflow's validation limits (mlflow/utils/validation.py, 3.18), worded as MLflow words them."""

import functools
import posixpath
import re

from mlflow_sh.errors import MlflowError

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_RUN_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_ARTIFACT_LOCATION_LENGTH = 2048
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_ENTITIES = 1000
MAX_BATCH_BYTES = 1024 * 1024
MAX_DATASET_FIELD_LENGTHS = {"name": 500, "digest": 36, "source": 65535, "schema": 1048575, "profile": 16777215}
MAX_INPUT_TAG_KEY_LENGTH = 255
MAX_INPUT_TAG_VALUE_LENGTH = 500

_KEY_PATTERN = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_PATTERN = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")


@functools.lru_cache(maxsize=4096)  # a batch repeats the same few keys
def key(name: str, kind: str) -> str:
    """A metric, param or tag key: MLflow's character set, length, and no path tricks."""
    if not _KEY_PATTERN.match(name):
        raise MlflowError.invalid(
            f"Invalid {kind} name: '{name}'. Names may only contain alphanumerics, underscores (_), dashes (-), "
            "periods (.), spaces ( ), colon(:) and slashes (/)."
        )
    if len(name) > MAX_KEY_LENGTH:
        raise MlflowError.invalid(f"{kind.capitalize()} name '{name}' had length {len(name)}, which exceeds the limit of {MAX_KEY_LENGTH}.")
    normalised = posixpath.normpath(name)
    if normalised != name or normalised == "." or normalised.startswith(("..", "/")):
        raise MlflowError.invalid(
            f"Invalid value \"{name}\" for parameter '{kind}' supplied: Names may be treated as files in certain "
            f"cases, and must not resolve to other names when treated as such. This name would resolve to {normalised!r}"
        )
    return name


def run_id(value: str) -> str:
    if not _RUN_ID_PATTERN.match(value):
        raise MlflowError.invalid(f"Invalid run ID: '{value}'")
    return value


def experiment_id(value) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise MlflowError.invalid(f"Invalid experiment ID '{value}'. Experiment ID must be a valid integer.") from None


def experiment_name(name: str) -> str:
    if not name or not name.strip():
        raise MlflowError.invalid("Invalid experiment name: ''. Experiment name must be a non-empty string.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise MlflowError.invalid(
            f"Experiment name '{name}' had length {len(name)}, which exceeds the limit of {MAX_EXPERIMENT_NAME_LENGTH}."
        )
    return name


def artifact_location(location: str) -> str:
    if len(location) > MAX_ARTIFACT_LOCATION_LENGTH:
        raise MlflowError.invalid(
            f"Invalid artifact location: the length {len(location)} exceeds the limit of {MAX_ARTIFACT_LOCATION_LENGTH}."
        )
    if location.startswith("runs:"):
        raise MlflowError.invalid(
            f"Artifact location cannot be a runs:/ URI. Given: '{location}'"
        )
    return location


def truncated(value: str, limit: int) -> str:
    """Long param and run-tag values are truncated, as MLFLOW_TRUNCATE_LONG_VALUES does by default."""
    return value if len(value) <= limit else value[:limit]


def experiment_tag_value(tag_key: str, value: str) -> str:
    if len(value) > MAX_EXPERIMENT_TAG_VALUE_LENGTH:
        raise MlflowError.invalid(
            f"Tag '{tag_key}' had value length {len(value)}, which exceeds the limit of {MAX_EXPERIMENT_TAG_VALUE_LENGTH}."
        )
    return value


def metric_timestamp(metric_key: str, timestamp: int) -> None:
    if timestamp < 0:
        raise MlflowError.invalid(
            f"Got invalid timestamp {timestamp} for metric '{metric_key}' (value=...). Timestamp must be a non-negative long."
        )


def dataset(fields: dict) -> None:
    for name, limit in MAX_DATASET_FIELD_LENGTHS.items():
        value = fields.get(name) or ""
        if len(value) > limit:
            raise MlflowError.invalid(f"Dataset {name} exceeds the maximum length of {limit}")


def input_tag(tag: dict) -> None:
    if len(tag["key"]) > MAX_INPUT_TAG_KEY_LENGTH:
        raise MlflowError.invalid(f"InputTag key exceeds the maximum length of {MAX_INPUT_TAG_KEY_LENGTH}")
    if len(tag["value"]) > MAX_INPUT_TAG_VALUE_LENGTH:
        raise MlflowError.invalid(f"InputTag value exceeds the maximum length of {MAX_INPUT_TAG_VALUE_LENGTH}")
