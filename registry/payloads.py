"""Registry rows as MLflow JSON, a fixed number of queries per page."""

from collections import defaultdict

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from registry.models import DELETED_STAGE, ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelAlias, RegisteredModelTag
from tracking.lookups import Values

VERSION_COLUMNS = (
    "id", "registered_model__name", "version", "creation_timestamp", "last_updated_timestamp", "current_stage",
    "description", "source", "run_id", "status", "status_message", "run_link", "registered_model_id",
)


def model_versions(version_pks: list[int], *, with_aliases: bool = False) -> list[dict]:
    """Versions in the given order: 2 queries (3 with aliases, which MLflow shows on single-version reads only)."""
    by_pk = model_versions_by_pk(version_pks, with_aliases=with_aliases)
    return [by_pk[pk] for pk in version_pks if pk in by_pk]


def model_versions_by_pk(version_pks, *, with_aliases: bool = False) -> dict[int, dict]:
    rows = {row["id"]: row for row in ModelVersion.objects.filter(pk__any=Values(version_pks)).values(*VERSION_COLUMNS)}
    tags = defaultdict(list)
    for version_pk, key, value in (
        ModelVersionTag.objects.filter(model_version_id__any=Values(version_pks)).order_by("id")
        .values_list("model_version_id", "key", "value")
    ):
        tags[version_pk].append({"key": key, "value": value})
    aliases = defaultdict(list)
    if with_aliases:
        model_pks = {row["registered_model_id"] for row in rows.values()}
        for model_pk, alias, version in (
            RegisteredModelAlias.objects.filter(registered_model_id__any=Values(model_pks)).order_by("alias")
            .values_list("registered_model_id", "alias", "version")
        ):
            aliases[(model_pk, version)].append(alias)
    return {
        pk: model_version(row, tags[pk], aliases[(row["registered_model_id"], row["version"])])
        for pk, row in rows.items()
    }


def model_version(row: dict, tags: list[dict], aliases: list[str]) -> dict:
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
    if tags:
        body["tags"] = tags
    body["run_link"] = row["run_link"] or ""
    if aliases:
        body["aliases"] = aliases
    return body


def latest_version_pks(model_pks) -> dict[int, list[int]]:
    """The highest version per stage of each model, in one query (a window over model and stage)."""
    ranked = (
        ModelVersion.objects.filter(registered_model_id__any=Values(model_pks)).exclude(current_stage=DELETED_STAGE)
        .annotate(rank=Window(RowNumber(), partition_by=[F("registered_model_id"), F("current_stage")],
                              order_by=F("version").desc()))
        .filter(rank=1).order_by("registered_model_id", "version").values_list("registered_model_id", "id")
    )
    latest = defaultdict(list)
    for model_pk, version_pk in ranked:
        latest[model_pk].append(version_pk)
    return latest


def registered_models(model_pks: list[int]) -> list[dict]:
    """Registered models in the given order, with latest versions, tags and aliases: 6 queries per page."""
    rows = {
        row["id"]: row for row in RegisteredModel.objects.filter(pk__any=Values(model_pks))
        .values("id", "name", "creation_timestamp", "last_updated_timestamp", "description")
    }
    latest = latest_version_pks(model_pks)
    versions = model_versions_by_pk([pk for pks in latest.values() for pk in pks])
    tags, aliases = defaultdict(list), defaultdict(list)
    for model_pk, key, value in (
        RegisteredModelTag.objects.filter(registered_model_id__any=Values(model_pks)).order_by("id")
        .values_list("registered_model_id", "key", "value")
    ):
        tags[model_pk].append({"key": key, "value": value})
    for model_pk, alias, version in (
        RegisteredModelAlias.objects.filter(registered_model_id__any=Values(model_pks)).order_by("alias")
        .values_list("registered_model_id", "alias", "version")
    ):
        aliases[model_pk].append({"alias": alias, "version": str(version)})
    result = []
    for pk in model_pks:
        if pk not in rows:
            continue
        row = rows[pk]
        body = {"name": row["name"], "creation_timestamp": row["creation_timestamp"],
                "last_updated_timestamp": row["last_updated_timestamp"]}
        if row["description"] is not None:
            body["description"] = row["description"]
        if latest[pk]:
            body["latest_versions"] = [versions[v] for v in latest[pk] if v in versions]
        if tags[pk]:
            body["tags"] = tags[pk]
        if aliases[pk]:
            body["aliases"] = aliases[pk]
        result.append(body)
    return result
