"""Registry writes; each runs inside the request's transaction."""

import json
import posixpath
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from mlflow_sh.errors import MlflowError
from registry.models import (
    DELETED_STAGE,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)
from registry.signals import model_versions_changed
from registry.selectors import PROMPT_TAG, canonical_stage, model_not_found, model_version_pk, registered_model_pk, version_number
from tracking import validation
from tracking.artifacts import safe_path, store_path_from_uri
from tracking.models import LoggedModel, LoggedModelTag, Run
from tracking.services import now_ms

MAX_TAG_VALUE_LENGTH = 100_000
PROMPT_SOURCES = {"dummy-source", "prompt-template"}  # placeholders the 3.x client and store write for prompts
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # on a logged model: the versions registered from it
ALIAS_PATTERN = re.compile(r"^[\w\-]*$")
RESERVED_ALIAS = re.compile(r"^v\d+$")


def _model_name(name: str) -> str:
    if not name or not name.strip():
        raise MlflowError.invalid("Registered model name cannot be empty.")
    if "/" in name or ":" in name:
        raise MlflowError.invalid(f"Invalid name: '{name}'. Registered model name cannot contain '/' or ':'.")
    normalised = posixpath.normpath(name)
    if normalised != name or normalised == "." or normalised.startswith(".."):
        raise MlflowError.invalid(f"Invalid name: '{name}'. Names must not resolve to other paths.")
    return name


def _tag(key: str, value: str) -> dict:
    validation.key(key, "tag")
    if len(value) > MAX_TAG_VALUE_LENGTH:
        raise MlflowError.invalid(
            f"Tag '{key}' had value length {len(value)}, which exceeds the limit of {MAX_TAG_VALUE_LENGTH}."
        )
    return {"key": key, "value": value}


def _locked_model(name: str) -> RegisteredModel:
    """The model's row, locked: version numbers and aliases change one request at a time."""
    model = RegisteredModel.objects.select_for_update().filter(name=name).first()
    if model is None:
        raise model_not_found(name)
    return model


def _touch(model_pk: int, when: int) -> None:
    RegisteredModel.objects.filter(pk=model_pk).update(last_updated_timestamp=when)


def _changed(action: str, version_pks) -> None:
    version_pks = list(version_pks)
    if version_pks:
        model_versions_changed.send(sender=ModelVersion, action=action, model_version_ids=version_pks)


def _live_version_pks(model_pk: int) -> list[int]:
    return list(ModelVersion.objects.filter(registered_model_id=model_pk).exclude(current_stage=DELETED_STAGE)
                .values_list("pk", flat=True))


# --- registered models --------------------------------------------------------------------------


def registered_model_create(*, name: str, tags: list[dict], description: str | None, project: str | None = None) -> None:
    """A new registered model; in a project view it belongs to that project (column and PROJECT_TAG tag)."""
    tags = [_tag(t["key"], t["value"]) for t in tags if t["key"] != settings.PROJECT_TAG]
    if project:
        tags.append({"key": settings.PROJECT_TAG, "value": project})
    created = now_ms()
    try:
        with transaction.atomic():  # a savepoint: the duplicate is answered, not left to poison the request
            model = RegisteredModel.objects.create(
                name=_model_name(name), creation_timestamp=created, last_updated_timestamp=created,
                description=description or None, project=project,
            )
    except IntegrityError:
        raise MlflowError.exists(f"Registered Model (name={name}) already exists.") from None
    RegisteredModelTag.objects.bulk_create(
        [RegisteredModelTag(registered_model=model, **t) for t in {t["key"]: t for t in tags}.values()]
    )


def registered_model_rename(*, name: str, new_name: str) -> None:
    model = _locked_model(name)
    _model_name(new_name)
    if new_name == name:
        return
    versions = _live_version_pks(model.pk)
    _changed("delete", versions)  # the versions' published ids contain the name: old ones go, new ones come
    now = now_ms()
    try:
        with transaction.atomic():
            RegisteredModel.objects.filter(pk=model.pk).update(name=new_name, last_updated_timestamp=now)
    except IntegrityError:
        raise MlflowError.exists(f"Registered Model (name={new_name}) already exists.") from None
    ModelVersion.objects.filter(registered_model=model).update(last_updated_timestamp=now)  # as the reference does
    _changed("create", versions)


def registered_model_update(*, name: str, description: str | None) -> None:
    model = _locked_model(name)
    if description is not None:
        RegisteredModel.objects.filter(pk=model.pk).update(description=description, last_updated_timestamp=now_ms())
        _changed("put", _live_version_pks(model.pk))


def registered_model_delete(*, name: str) -> None:
    model = _locked_model(name)
    _changed("delete", _live_version_pks(model.pk))
    model.delete()


def registered_model_set_tag(*, name: str, key: str, value: str) -> None:
    model = _locked_model(name)
    tag = _tag(key, value)
    RegisteredModelTag.objects.bulk_create(
        [RegisteredModelTag(registered_model=model, **tag)],
        update_conflicts=True, unique_fields=["registered_model", "key"], update_fields=["value"],
    )
    _changed("put", _live_version_pks(model.pk))


def registered_model_delete_tag(*, name: str, key: str) -> None:
    model = _locked_model(name)
    if RegisteredModelTag.objects.filter(registered_model=model, key=key).delete()[0]:
        _changed("put", _live_version_pks(model.pk))


# --- model versions -----------------------------------------------------------------------------


def model_version_create(*, name: str, source: str, run_id: str, tags: list[dict], run_link: str,
                         description: str, model_id: str) -> int:
    """A new version (number = highest ever + 1, never reused), READY at once; returns its pk."""
    tags = [_tag(t["key"], t["value"]) for t in tags]
    model = _locked_model(name)
    if source in PROMPT_SOURCES and _is_prompt(model.pk):
        storage_location, run_id, model_id = source, run_id or None, model_id or None  # a prompt's text is in tags
    else:
        storage_location, run_id, model_id = _resolve_source(source, run_id=run_id or None, model_id=model_id or None)
    highest = ModelVersion.objects.filter(registered_model=model).aggregate(highest=Max("version"))["highest"] or 0
    created = now_ms()
    version = ModelVersion.objects.create(
        registered_model=model, version=highest + 1, creation_timestamp=created, last_updated_timestamp=created,
        description=description or "", current_stage="None", source=source, storage_location=storage_location,
        run_id=run_id, run_link=run_link or "", model_id=model_id or None, status="READY",
    )
    ModelVersionTag.objects.bulk_create(
        [ModelVersionTag(model_version=version, **t) for t in {t["key"]: t for t in tags}.values()]
    )
    _touch(model.pk, created)
    if model_id:
        _note_registration(model_id, name, version.version)
    _changed("create", [version.pk])
    return version.pk


def _is_prompt(model_pk: int) -> bool:
    return RegisteredModelTag.objects.filter(registered_model_id=model_pk, key=PROMPT_TAG, value__iexact="true").exists()


def _resolve_source(source: str, *, run_id: str | None, model_id: str | None) -> tuple[str, str | None, str | None]:
    """(storage location, run_id, model_id) of a new version; sources that could reach other files are refused."""
    invalid = MlflowError.invalid(
        f"Invalid model version source: '{source}'. To use a local path as a model version source, the run_id "
        "request parameter has to be specified and the local path has to be contained within the artifact "
        "directory of the run specified by the run_id."
    )
    parts = urlsplit(source)
    path = parts.path.lstrip("/") if parts.scheme else source.lstrip("/")
    try:
        if safe_path(path) != path.rstrip("/"):  # "./", "//" and the like: only one spelling of a path
            raise invalid
    except MlflowError:
        raise invalid from None
    head, _, rest = source.partition(":")[2].lstrip("/").partition("/")  # runs:/<head>/<rest>, models:/<head>/<rest>
    if parts.scheme == "runs":  # the reference insists the request names the same run
        if run_id != head:
            raise MlflowError.invalid(f"The run_id '{run_id}' does not match the run of the source '{source}'.")
        artifact_uri = Run.objects.filter(pk=head).values_list("artifact_uri", flat=True).first()
        if artifact_uri is None:
            raise MlflowError.not_found(f"Run with id={head} not found")
        return "/".join(p for p in (artifact_uri.rstrip("/"), rest) if p), head, model_id
    if parts.scheme == "models" and head.startswith("m-"):
        if model_id != head:
            raise MlflowError.invalid(f"The model_id '{model_id}' does not match the source '{source}'.")
        logged = LoggedModel.objects.filter(pk=head).values("artifact_location", "source_run_id").first()
        if logged is None:
            raise MlflowError.not_found(f"Logged model with ID '{head}' not found.")
        return logged["artifact_location"], run_id or logged["source_run_id"] or None, head
    if parts.scheme == "models":  # models:/<name>/<version>: the same files, run and logged model
        origin = ModelVersion.objects.filter(pk=model_version_pk(head, rest)).values(
            "storage_location", "run_id", "model_id").get()
        return origin["storage_location"], run_id or origin["run_id"], model_id or origin["model_id"]
    if parts.scheme in {"", "file"}:
        raise invalid  # a path on this server's disk is never a model source
    if store_path_from_uri(source) is not None:  # proxied files: only those of the run or logged model named
        roots = list(Run.objects.filter(pk=run_id).values_list("artifact_uri", flat=True)) if run_id else []
        roots += LoggedModel.objects.filter(pk=model_id).values_list("artifact_location", flat=True) if model_id else []
        source_path = store_path_from_uri(source)
        if not any(_within(source_path, store_path_from_uri(root)) for root in roots):
            raise invalid
    return source, run_id, model_id


def _within(path: str, root: str | None) -> bool:
    return root is not None and (path == root or path.startswith(root.rstrip("/") + "/"))


def _note_registration(model_id: str, name: str, version: int) -> None:
    """Appends {"name", "version"} to the logged model's mlflow.modelVersions tag, as MLflow does."""
    current = LoggedModelTag.objects.filter(model_id=model_id, key=MODEL_VERSIONS_TAG).values_list("value", flat=True).first()
    registrations = json.loads(current) if current else []
    registrations.append({"name": name, "version": version})
    LoggedModelTag.objects.bulk_create(
        [LoggedModelTag(model_id=model_id, key=MODEL_VERSIONS_TAG, value=json.dumps(registrations))],
        update_conflicts=True, unique_fields=["model", "key"], update_fields=["value"],
    )


def _locked_version(name: str, version) -> ModelVersion:
    model = _locked_model(name)
    number = version_number(version)
    found = ModelVersion.objects.filter(registered_model=model, version=number).exclude(current_stage=DELETED_STAGE).first()
    if found is None:
        raise MlflowError.not_found(f"Model Version (name={name}, version={number}) not found")
    return found


def model_version_update(*, name: str, version, description: str | None) -> None:
    found = _locked_version(name, version)
    if description is not None:
        now = now_ms()
        ModelVersion.objects.filter(pk=found.pk).update(description=description, last_updated_timestamp=now)
        _touch(found.registered_model_id, now)
        _changed("put", [found.pk])


def model_version_transition(*, name: str, version, stage: str, archive_existing_versions: bool) -> None:
    found = _locked_version(name, version)
    stage = canonical_stage(stage)
    if archive_existing_versions and stage not in {"Staging", "Production"}:
        raise MlflowError.invalid(
            f"Model version transition cannot archive existing model versions because '{stage}' is not an "
            "Active stage. Valid stages are Staging and Production."
        )
    now = now_ms()
    archived = []
    if archive_existing_versions:
        others = ModelVersion.objects.filter(registered_model_id=found.registered_model_id, current_stage=stage).exclude(pk=found.pk)
        archived = list(others.values_list("pk", flat=True))
        others.update(current_stage="Archived", last_updated_timestamp=now)
    ModelVersion.objects.filter(pk=found.pk).update(current_stage=stage, last_updated_timestamp=now)
    _touch(found.registered_model_id, now)
    _changed("put", [found.pk, *archived])


def model_version_delete(*, name: str, version) -> None:
    """Soft: the number stays taken; the files' location and run are forgotten; its aliases go."""
    found = _locked_version(name, version)
    _changed("delete", [found.pk])
    now = now_ms()
    ModelVersion.objects.filter(pk=found.pk).update(
        current_stage=DELETED_STAGE, source="REDACTED-SOURCE-PATH", storage_location="REDACTED-SOURCE-PATH",
        run_id=None, run_link="", last_updated_timestamp=now,
    )
    RegisteredModelAlias.objects.filter(registered_model_id=found.registered_model_id, version=found.version).delete()
    _touch(found.registered_model_id, now)


def model_version_set_tag(*, name: str, version, key: str, value: str) -> None:
    found = _locked_version(name, version)
    tag = _tag(key, value)
    ModelVersionTag.objects.bulk_create(
        [ModelVersionTag(model_version=found, **tag)],
        update_conflicts=True, unique_fields=["model_version", "key"], update_fields=["value"],
    )
    _changed("put", [found.pk])


def model_version_delete_tag(*, name: str, version, key: str) -> None:
    found = _locked_version(name, version)
    if ModelVersionTag.objects.filter(model_version=found, key=key).delete()[0]:
        _changed("put", [found.pk])


# --- aliases --------------------------------------------------------------------------------------


def _alias(alias: str) -> str:
    if not alias or not ALIAS_PATTERN.match(alias) or len(alias) > 255:
        raise MlflowError.invalid(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-), "
            "and must be 255 characters or fewer."
        )
    if alias.lower() == "latest" or RESERVED_ALIAS.match(alias.lower()):
        raise MlflowError.invalid(
            f"'{alias}' alias name (case insensitive) is reserved: 'latest' and 'v<number>' name a version already."
        )
    return alias


def alias_set(*, name: str, alias: str, version) -> None:
    found = _locked_version(name, version)
    previous = _alias_holder(found.registered_model_id, alias)
    RegisteredModelAlias.objects.bulk_create(
        [RegisteredModelAlias(registered_model_id=found.registered_model_id, alias=_alias(alias), version=found.version)],
        update_conflicts=True, unique_fields=["registered_model", "alias"], update_fields=["version"],
    )
    _changed("put", {found.pk, *previous})  # the version that had the alias, and the one that has it now


def alias_delete(*, name: str, alias: str) -> None:
    model = _locked_model(name)
    holders = _alias_holder(model.pk, alias)
    RegisteredModelAlias.objects.filter(registered_model=model, alias=alias).delete()
    _changed("put", holders)


def _alias_holder(model_pk: int, alias: str) -> list[int]:
    number = RegisteredModelAlias.objects.filter(registered_model_id=model_pk, alias=alias).values_list("version", flat=True).first()
    if number is None:
        return []
    return list(ModelVersion.objects.filter(registered_model_id=model_pk, version=number)
                .exclude(current_stage=DELETED_STAGE).values_list("pk", flat=True))
