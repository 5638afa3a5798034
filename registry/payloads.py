"""Registry rows as MLflow JSON. Tags and aliases come as JSON columns of their owner's own query, so a model
version is one statement and a registered model two (its row, then its latest versions), whatever the page size."""

from collections import defaultdict

from django.db.models import Exists, OuterRef

from registry.models import DELETED_STAGE, ModelVersion, ModelVersionTag, RegisteredModelAlias, RegisteredModelTag
from tracking.lookups import Values, json_children, json_rows

VERSION_COLUMNS = (
    "id", "registered_model__name", "version", "creation_timestamp", "last_updated_timestamp", "current_stage",
    "description", "source", "run_id", "status", "status_message", "run_link", "registered_model_id",
)
MODEL_COLUMNS = ("id", "name", "creation_timestamp", "last_updated_timestamp", "description")


def version_rows(versions, *, with_aliases: bool = False):
    """The values() query of a ModelVersion queryset, each row with its tags (and aliases, which MLflow shows on
    single-version reads only): still a query, so that a search can page it."""
    children = {"tag_rows": json_rows(ModelVersionTag.objects.filter(model_version=OuterRef("pk")),
                                      "model_version", "id", "key", "value")}
    if with_aliases:
        children["alias_rows"] = json_rows(
            RegisteredModelAlias.objects.filter(registered_model=OuterRef("registered_model"), version=OuterRef("version")),
            "registered_model", "alias")
    return versions.annotate(**children).values(*VERSION_COLUMNS, *children)


def model_version(row: dict, *, with_aliases: bool = True) -> dict:
    """`with_aliases=False`: a latest version inside a registered model, where MLflow shows none."""
    body = {
        "name": row["registered_model__name"],
        "version": str(row["version"]),
        "creation_timestamp": row["creation_timestamp"],
        "last_updated_timestamp": row["last_updated_timestamp"],
        "current_stage": row["current_stage"],
        "description": row["description"] or "",
        "source": row["source"],
    }
    if row["run_id"] is not None:
        body["run_id"] = row["run_id"]
    body["status"] = row["status"]
    if row["status_message"]:
        body["status_message"] = row["status_message"]
    if tags := json_children(row["tag_rows"]):
        body["tags"] = [{"key": key, "value": value} for _id, key, value in tags]
    body["run_link"] = row["run_link"] or ""
    if with_aliases and (aliases := json_children(row.get("alias_rows"))):
        body["aliases"] = [alias for (alias,) in aliases]
    return body


def model_versions(versions, *, with_aliases: bool = False) -> list[dict]:
    """The versions of a queryset, in its order: one statement."""
    return [model_version(row) for row in version_rows(versions, with_aliases=with_aliases)]


def latest_of(live_versions):
    """The highest of the given live versions per model and stage (no newer one in its stage), by version."""
    newer = ModelVersion.objects.exclude(current_stage=DELETED_STAGE).filter(
        registered_model=OuterRef("registered_model"), current_stage=OuterRef("current_stage"),
        version__gt=OuterRef("version"))
    return live_versions.filter(~Exists(newer)).order_by("registered_model_id", "version")


def latest_versions(model_pks) -> dict[int, list[dict]]:
    """The latest versions of each model: one statement."""
    live = ModelVersion.objects.exclude(current_stage=DELETED_STAGE).filter(registered_model_id__any=Values(model_pks))
    latest = defaultdict(list)
    for row in version_rows(latest_of(live)):
        latest[row["registered_model_id"]].append(model_version(row))
    return latest


def model_rows(models):
    """The values() query of a RegisteredModel queryset, each row with its tags and aliases."""
    return models.annotate(
        tag_rows=json_rows(RegisteredModelTag.objects.filter(registered_model=OuterRef("pk")),
                           "registered_model", "id", "key", "value"),
        alias_rows=json_rows(RegisteredModelAlias.objects.filter(registered_model=OuterRef("pk")),
                             "registered_model", "alias", "version"),
    ).values(*MODEL_COLUMNS, "tag_rows", "alias_rows")


def registered_models(rows: list[dict]) -> list[dict]:
    """Rows of model_rows() as MLflow JSON, with their latest versions: one statement more."""
    latest = latest_versions([row["id"] for row in rows]) if rows else {}
    return [registered_model(row, latest.get(row["id"], [])) for row in rows]


def registered_model(row: dict, latest: list[dict]) -> dict:
    body = {"name": row["name"], "creation_timestamp": row["creation_timestamp"],
            "last_updated_timestamp": row["last_updated_timestamp"]}
    if row["description"] is not None:
        body["description"] = row["description"]
    if latest:
        body["latest_versions"] = latest
    if tags := json_children(row["tag_rows"]):
        body["tags"] = [{"key": key, "value": value} for _id, key, value in tags]
    if aliases := json_children(row["alias_rows"]):
        body["aliases"] = [{"alias": alias, "version": str(version)} for alias, version in aliases]
    return body
