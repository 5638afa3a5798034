"""Which GitLab projects own the resources a request names: one query per check, whatever the resource."""

import re
from urllib.parse import urlsplit

from django.conf import settings

from registry.models import RegisteredModel
from tracking.models import Experiment, LoggedModel, Run

LEADING_EXPERIMENT_ID = re.compile(r"^/?(\d+)(/|$)")


class NoResource(Exception):
    """The request does not name a resource this rule can check: denied (fail closed)."""


def _values(data: dict, field: str) -> list[str]:
    value = data.get(field)
    if not value and field in {"run_id", "run_uuid"}:  # run_id falls back to the legacy run_uuid and back
        value = data.get("run_uuid" if field == "run_id" else "run_id")
    if value in (None, "", []):
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def owning_projects(resource: str, field: str, data: dict) -> list[str | None] | None:
    """The owning project of each named resource (None for an untagged one); None when nothing is named,
    so that the handler answers its own "does not exist" error."""
    values = _values(data, field)
    if not values and resource == "artifact_path":
        raise NoResource()  # the root of the store belongs to no project: nobody lists it
    if not values:
        return None
    if resource == "experiment":
        ids = [int(v) for v in values if v.lstrip("-").isdigit()]
        rows = Experiment.objects.filter(pk__in=ids).values_list("project", flat=True)
    elif resource == "experiment_name":
        rows = Experiment.objects.filter(name__in=values).values_list("project", flat=True)
    elif resource == "run":
        rows = Run.objects.filter(pk__in=values).values_list("experiment__project", flat=True)
    elif resource == "logged_model":
        rows = LoggedModel.objects.filter(pk__in=values).values_list("experiment__project", flat=True)
    elif resource == "registered_model":
        rows = RegisteredModel.objects.filter(name__in=values).values_list("project", flat=True)
    elif resource == "artifact_path":
        match = LEADING_EXPERIMENT_ID.match(values[0])
        if match is None:
            raise NoResource()  # a proxied path must start with its experiment id
        rows = Experiment.objects.filter(pk=int(match.group(1))).values_list("project", flat=True)
    elif resource == "model_source":
        return _source_projects(values[0])
    else:
        raise NoResource()
    found = list(rows)
    return found or None


def _source_projects(source: str) -> list[str | None] | None:
    """A model version's source: the run or logged model it names, or the experiment of a proxied path."""
    scheme = urlsplit(source).scheme  # lower-cased, as the registry reads it: "MODELS:/" is "models:/"
    rest = source.partition(":")[2]
    head = rest.lstrip("/").split("/")[0]
    if scheme == "runs":
        return owning_projects("run", "run_id", {"run_id": head})
    if scheme == "models" and head.startswith("m-"):
        return owning_projects("logged_model", "model_id", {"model_id": head})
    if scheme == "models":
        return owning_projects("registered_model", "name", {"name": head})
    if scheme == "mlflow-artifacts":
        return owning_projects("artifact_path", "path", {"path": rest.lstrip("/")})
    return None  # other sources name no project here; the registry refuses the unsafe ones


def name_suffix(name: str) -> str | None:
    """The " (<project id>)" at the end of an experiment or registered-model name, without spaces."""
    match = re.search(r"\s+\((.+)\)$", name or "")
    return match.group(1).strip() if match else None


def protected_tag(key: str) -> bool:
    return key == settings.PROJECT_TAG


def current_name(data: dict) -> str | None:
    """The name an update or rename request starts from (an experiment's, or the registered model's)."""
    if "experiment_id" in data:
        experiment_id = str(data["experiment_id"])
        if not experiment_id.isdigit():
            return None
        return Experiment.objects.filter(pk=int(experiment_id)).values_list("name", flat=True).first()
    return data.get("name")
