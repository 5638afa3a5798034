"""The STAC item of a model version (MLM extension): built from the registry, the run and the MLmodel file.

Field mapping: ../shared/spec/stac-publication.md §5. The item is assembled with pystac (Item, Asset, Link) and
checked, before anyone sees it, against the STAC 1.0.0 Item schema, the configured MLM schema and the `file`
extension schema, all read from stac_publish/schemas/ (see its README): nothing is fetched at run time.

pystac's own MLM extension (pystac-ext-mlm 1.4.1) is not used to write the `mlm:*` fields: it knows MLM up to
v1.4.0 only (it would list the v1.4.0 schema URL), and its `apply` writes `mlm:pretrained_source: null` and
`mlm:accelerator: null` where §5.2 says "omitted when absent". The fields are plain properties instead, and the
shipped v1.5.2 schema is the judge.
"""

import functools
import json
import logging
import mimetypes
import posixpath
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pystac
import yaml
from django.conf import settings
from django.db import IntegrityError, transaction
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match
from pystac.utils import datetime_to_str
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT7

from mlflow_sh.errors import MlflowError
from registry.models import DELETED_STAGE, ModelVersion, ModelVersionTag, RegisteredModelAlias, RegisteredModelTag
from stac_publish.eligibility import SUFFIX, model_slug, publishable_item_ids
from tracking.artifacts import artifact_store, join, store_path_from_uri
from tracking.models import LoggedModelParam, Param

logger = logging.getLogger("mlflow_sh.stac_publish")

# The tag that tells a version's owners why it is not in the catalogue. Not under "mlflow.": the MLflow UI
# treats that prefix as internal and hides such tags, and this one is meant to be read by people.
PROBLEM_TAG = "sharinghub.stac_error"
PROBLEM_MAX_LENGTH = 5000

STAC_VERSION = "1.0.0"  # as SharingHub's own items
CORE_ITEM_SCHEMA = "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/item.json"
FILE_SCHEMA = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
SCHEMA_DIR = Path(__file__).resolve().with_name("schemas")

MLMODEL_MAX_BYTES = 16 * 1024 * 1024
REQUIREMENTS_MAX_BYTES = 1024 * 1024

# MLM v1.5.2 (§4.1): the task enum the schema enforces.
TASKS = (
    "regression", "classification", "scene-classification", "detection", "object-detection", "segmentation",
    "semantic-segmentation", "instance-segmentation", "panoptic-segmentation", "similarity-search", "generative",
    "image-captioning", "super-resolution", "downscaling",
)
MLM_NAME_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.\-\s]+[a-zA-Z0-9]$")
# The schemas (v1.4.0 and v1.5.2) want mlm:framework_version to be a SemVer 2.0 version.
SEMVER_PATTERN = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-]"
    r"[0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
HYPERPARAMETER_KEY = re.compile(r"^[0-9a-zA-Z_.-]+$")
# Item fields of §4.1-4.2 that tags may set, and the asset field of §5.5; any other mlm:* tag is ignored.
ITEM_TAG_FIELDS = {
    "mlm:name", "mlm:architecture", "mlm:tasks", "mlm:input", "mlm:output", "mlm:framework", "mlm:framework_version",
    "mlm:memory_size", "mlm:total_parameters", "mlm:pretrained", "mlm:pretrained_source", "mlm:batch_size_suggestion",
    "mlm:accelerator", "mlm:accelerator_constrained", "mlm:accelerator_summary", "mlm:accelerator_count",
    "mlm:hyperparameters",
}
ASSET_TAG_FIELDS = {"mlm:artifact_type"}
PASSTHROUGH_FIELDS = (  # tags only, JSON-typed, omitted when absent
    "mlm:pretrained", "mlm:pretrained_source", "mlm:total_parameters", "mlm:memory_size", "mlm:batch_size_suggestion",
    "mlm:accelerator", "mlm:accelerator_constrained", "mlm:accelerator_summary", "mlm:accelerator_count",
)

# §5.4: main MLmodel flavor -> mlm:framework; other flavors keep their name.
FRAMEWORKS = {"sklearn": "scikit-learn", "pytorch": "PyTorch", "tensorflow": "TensorFlow", "keras": "Keras",
              "onnx": "ONNX", "transformers": "Hugging Face"}
# Flavor -> the pip distribution whose pin in requirements.txt gives mlm:framework_version.
FLAVOR_PACKAGES = {"sklearn": "scikit-learn", "pytorch": "torch", "spark": "pyspark", "paddle": "paddlepaddle",
                   "sentence_transformers": "sentence-transformers", "h2o": "h2o"}
# §5.3: MLflow column types and NumPy dtypes -> STAC raster data types.
COLUMN_TYPES = {"integer": "int32", "long": "int64", "float": "float32", "double": "float64"}
TENSOR_TYPES = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"}

_MEDIA_TYPES = mimetypes.MimeTypes()  # Python's own table only: the same answer on every machine


class NotPublishable(Exception):
    """The version cannot become a valid item (e.g. no mlm:tasks): held, with the reason shown to people."""


# --- the item -------------------------------------------------------------------------------------

def build_item(model_version_id: int, item_id: str) -> dict | None:
    """The version's item as a JSON-ready dict, validated offline against the shipped schemas.

    None when the version is not publishable any more: it is gone or deleted, it is not READY, its model has no
    project, is a prompt, or has a name without " (<project id>)". NotPublishable(reason) when it cannot become a
    valid MLM item. The item gets `item_id` even when the model was renamed since the job was recorded: a rename
    queues the deletion of the old ids after their pending jobs, so such an item is short-lived and the per-item
    order of the outbox stays what it was.
    """
    version = ModelVersion.objects.select_related("registered_model").filter(pk=model_version_id).first()
    if version is None or version.current_stage == DELETED_STAGE or not version.registered_model.project:
        return None
    if version.pk not in publishable_item_ids([version.pk]):
        return None
    if not settings.STAC_PUBLIC_BASE_URL:
        raise NotPublishable("STAC_PUBLIC_BASE_URL is not set: the item's links need this server's public URL")
    item = _Builder(version, item_id).build()
    validate_item(item)
    return item


def validate_item(item: dict) -> None:
    """NotPublishable naming the first offending field unless the item is valid against the STAC 1.0.0 Item schema
    and every schema in its stac_extensions (all shipped; a schema not shipped cannot be checked, so it fails).

    One rule of the core schema is left to the target: an item with `collection` must also carry a `collection`
    link. The item is sent to /collections/{c}/items, where the Transaction extension has the server set
    `collection` (and the server builds self/parent/root/collection links, spec §5.4), so the core schema sees the
    item without `collection`, which must be a non-empty string. The extension schemas see the item as sent.
    """
    collection = item.get("collection")
    if "collection" in item and not (isinstance(collection, str) and collection):
        raise NotPublishable(f"collection: {collection!r} is not a collection id")
    core = {key: value for key, value in item.items() if key != "collection"}
    for uri, document in [(CORE_ITEM_SCHEMA, core), *((uri, item) for uri in item.get("stac_extensions", []))]:
        try:
            validator = _validator(uri)
        except (LookupError, Unresolvable):
            raise NotPublishable(f"stac_extensions: no offline copy of the schema {uri} to validate the item "
                                 f"against (shipped: {', '.join(shipped_schema_uris())})") from None
        error = best_match(validator.iter_errors(document))
        if error is not None:
            raise NotPublishable(f"{_json_path(error.absolute_path)}: {error.message} (schema {uri})")


class _Builder:
    def __init__(self, version: ModelVersion, item_id: str):
        self.version = version
        self.model = version.registered_model
        self.item_id = item_id
        self.name = self.model.name
        self.bare_name = SUFFIX.sub("", self.name)
        self.title = f"{self.bare_name} v{version.version}"
        self.project_id = int(SUFFIX.search(self.name).group(1))
        self.project = self.model.project
        self.tracking_uri = f"{settings.STAC_PUBLIC_BASE_URL}/{self.project}/tracking/"
        self.tags = _mlm_tags(version, self.model)
        # Run-relative sources (2.x clients) are served by /get-artifact, exactly as SharingHub links them;
        # any other source (3.x models:/m-...) by /model-versions/get-artifact.
        source = version.source or ""
        self.run_artifact_path = (source.split("/artifacts/", 1)[1].strip("/")
                                  if "/artifacts/" in source and version.run_id else None)

    def build(self) -> dict:
        tasks = self.tasks()  # first: without them nothing else matters
        files = _ModelFiles.read(self.version)
        properties = {"title": self.title}
        description = (self.version.description or "").strip() or (self.model.description or "").strip()
        if description:
            properties["description"] = description
        created = _utc(self.version.creation_timestamp)
        properties["datetime"] = datetime_to_str(created)
        properties["created"] = datetime_to_str(created)
        properties["updated"] = datetime_to_str(_utc(self.version.last_updated_timestamp))
        properties["mlm:name"] = mlm_name(self._string("mlm:name", default=self.name))
        properties["mlm:architecture"] = self._string("mlm:architecture", default="") or "unknown"
        properties["mlm:tasks"] = tasks
        flavor = files.main_flavor()
        framework = self._string("mlm:framework", default=FRAMEWORKS.get(flavor, flavor) if flavor else "")
        if framework:
            properties["mlm:framework"] = framework
        framework_version = self.framework_version(files, flavor)
        if framework_version:
            properties["mlm:framework_version"] = framework_version
        properties["mlm:input"] = self.io("input", files, tasks)
        properties["mlm:output"] = self.io("output", files, tasks)
        hyperparameters = self.hyperparameters()
        if hyperparameters:
            properties["mlm:hyperparameters"] = hyperparameters
        for field in PASSTHROUGH_FIELDS:
            if field in self.tags:
                properties[field] = self._passthrough(field)
        properties["sharinghub:id"] = self.project_id
        properties["sharinghub:path"] = self.project
        aliases = sorted(RegisteredModelAlias.objects.filter(registered_model=self.model, version=self.version.version)
                         .values_list("alias", flat=True))
        if aliases:
            properties["mlflow:aliases"] = aliases
        if self.version.current_stage and self.version.current_stage != "None":
            properties["mlflow:stage"] = self.version.current_stage

        model_file, model_size = files.model_file()
        model_asset = {"mlm:artifact_type": self._string("mlm:artifact_type", default="") or f"mlflow.{flavor or 'pyfunc'}"}
        if model_size is not None:
            model_asset["file:size"] = model_size
        extensions = [settings.STAC_PUBLISH_MLM_SCHEMA] + ([FILE_SCHEMA] if model_size is not None else [])

        geometry, bbox = settings.STAC_PUBLISH_GEOMETRY, settings.STAC_PUBLISH_BBOX  # some targets (pgstac) need one
        item = pystac.Item(id=self.item_id, geometry=geometry, bbox=bbox, datetime=created, properties=properties,
                           stac_extensions=extensions, collection=settings.STAC_PUBLISH_COLLECTION)
        item.add_link(pystac.Link("mlflow:tracking-uri", self.tracking_uri, title="MLflow - Tracking URI"))
        item.add_link(pystac.Link(
            "mlflow:model", f"{self.tracking_uri}#/models/{quote(self.name, safe='')}/versions/{self.version.version}",
            title=self.title, extra_fields={"mlflow:uri": f"models:/{self.name}/{self.version.version}"}))
        if settings.SHARINGHUB_URL:
            item.add_link(pystac.Link(
                "related", f"{settings.SHARINGHUB_URL}/api/stac/collections/{settings.STAC_PUBLISH_COLLECTION}/items/{self.project}",
                media_type="application/geo+json", title="SharingHub project"))
        extension = posixpath.splitext(posixpath.basename(model_file))[1]
        item.add_asset(f"{model_slug(self.title.lower())}{extension}", pystac.Asset(
            href=self.artifact_href(model_file), title=self.title, roles=["mlm:model", "data"],
            media_type=_MEDIA_TYPES.guess_type(posixpath.basename(model_file))[0] or "application/octet-stream",
            extra_fields=model_asset))
        item.add_asset("mlmodel", pystac.Asset(href=self.artifact_href("MLmodel"), title="MLmodel", roles=["metadata"],
                                               media_type="application/yaml"))
        body = item.to_dict(include_self_link=False, transform_hrefs=False)
        body["stac_version"] = STAC_VERSION  # pystac writes its own (1.1.0); the item is STAC 1.0.0 as SharingHub's
        return body

    # --- fields ---

    def tasks(self) -> list[str]:
        if "mlm:tasks" not in self.tags:
            raise NotPublishable(f"mlm:tasks: no mlm:tasks tag on the version or its model; MLflow has no task field, so "
                                 f"set one to a JSON array or comma-separated list of: {', '.join(TASKS)}")
        raw, value = self.tags["mlm:tasks"]
        if isinstance(value, str):
            values = value.split(",")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            values = value
        else:
            raise NotPublishable(f"mlm:tasks: the tag must be a JSON array of strings or a comma-separated list, not {raw!r}")
        tasks = list(dict.fromkeys(v.strip() for v in values if v.strip()))
        unknown = [task for task in tasks if task not in TASKS]
        if unknown:
            raise NotPublishable(f"mlm:tasks: {', '.join(map(repr, unknown))} not among the MLM tasks: {', '.join(TASKS)}")
        if not tasks:
            raise NotPublishable(f"mlm:tasks: the tag is empty; list at least one of: {', '.join(TASKS)}")
        return tasks

    def framework_version(self, files: "_ModelFiles", flavor: str | None) -> str | None:
        """The tag, else the flavor's version or requirements pin; as SemVer, which the schema demands ("1.5" is
        written "1.5.0"). A tag that stays invalid is left to the schema (the reason names the field); a derived
        version that cannot be SemVer (e.g. "2.1.0.post1") is left out, the field being optional."""
        tagged = self._string("mlm:framework_version", default="")
        if tagged:
            return semver(tagged) or tagged
        derived = files.flavor_version(flavor)
        if derived and not semver(derived):
            logger.warning("stac: %s v%s: framework version %r left out: not a SemVer version",
                           self.name, self.version.version, derived)
        return semver(derived) if derived else None

    def io(self, role: str, files: "_ModelFiles", tasks: list[str]) -> list:
        """mlm:input / mlm:output: the tag (full JSON), else the MLmodel signature (§5.3)."""
        field = f"mlm:{role}"
        if field in self.tags:
            raw, value = self.tags[field]
            if isinstance(value, dict):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise NotPublishable(f"{field}: the tag must be a JSON array of Model {role.capitalize()} Objects, "
                                     f"not {raw[:200]!r}")
            if role == "output":
                value = [{**obj, "tasks": obj.get("tasks", tasks)} for obj in value]
            return value
        specs = files.signature(role)
        if specs is None:
            if role == "output":
                return []  # a signature without outputs: MLM accepts an empty list
            raise NotPublishable(f"{field}: the model has no signature in its MLmodel and no {field} tag; log the "
                                 f"model with a signature or set the {field} tag (JSON, see the MLM extension)")
        if any(spec.get("type") == "tensor" for spec in specs):
            objects = [_tensor_object(spec, role, index, tasks) for index, spec in enumerate(specs)]
        else:
            objects = [_columns_object(specs, role, tasks)]
        if role == "input" and "bands" in _model_input_required():
            objects = [{"name": obj["name"], "bands": [], **obj} for obj in objects]  # MLM <= v1.4 requires it
        return objects

    def hyperparameters(self) -> dict:
        if "mlm:hyperparameters" in self.tags:
            raw, value = self.tags["mlm:hyperparameters"]
            if not isinstance(value, dict):
                raise NotPublishable(f"mlm:hyperparameters: the tag must be a JSON object, not {raw[:200]!r}")
            pairs = list(value.items())
        elif (self.version.source or "").startswith("models:/m-"):
            model_id = self.version.model_id or self.version.source.removeprefix("models:/").split("/")[0]
            pairs = sorted(LoggedModelParam.objects.filter(model_id=model_id).values_list("key", "value"))
        elif self.version.run_id:
            pairs = sorted(Param.objects.filter(run_id=self.version.run_id).values_list("key", "value"))
        else:
            pairs = []
        return sanitize_hyperparameters(pairs)  # params in code-point order of their keys: the same on any database

    def artifact_href(self, path: str) -> str:
        """§5.5: the URL of a file of the model (path relative to the model directory)."""
        if self.run_artifact_path is not None:
            full = "/".join(p for p in (self.run_artifact_path, path) if p)
            return f"{self.tracking_uri}get-artifact?path={quote(full, safe='')}&run_uuid={quote(self.version.run_id, safe='')}"
        return (f"{self.tracking_uri}model-versions/get-artifact?name={quote(self.name, safe='')}"
                f"&version={self.version.version}&path={quote(path, safe='')}")

    def _string(self, field: str, *, default: str) -> str:
        """A string field from its tag: a JSON string's value, else the tag's text as written."""
        if field not in self.tags:
            return default
        raw, value = self.tags[field]
        return (value if isinstance(value, str) else raw).strip()

    def _passthrough(self, field: str):
        raw, value = self.tags[field]
        if field == "mlm:accelerator_summary":
            return self._string(field, default="")
        if field == "mlm:accelerator" and value == "cpu":
            return "amd64"  # the README's alias; the v1.5.2 schema enum has only amd64
        return value


def mlm_name(raw: str) -> str:
    """§5.2: the name without " (<project id>)", made to match the MLM pattern (ASCII; no whitespace but spaces)."""
    name = re.sub(r"[^A-Za-z0-9_. -]", "-", SUFFIX.sub("", str(raw)))
    name = re.sub(r"[^A-Za-z0-9]+$", "", re.sub(r"^[^A-Za-z]+", "", name))
    if len(name) < 3:
        name = f"model-{name}" if name else "model"
    return name


def semver(version: str) -> str | None:
    """The version as SemVer 2.0 when it is one, or a plain release with one or two parts (padded with .0)."""
    release, plus, local = version.strip().partition("+")
    if re.fullmatch(r"\d+(\.\d+){0,2}", release):
        parts = [str(int(part)) for part in release.split(".")]
        release = ".".join(parts + ["0"] * (3 - len(parts)))
    candidate = release + plus + local
    return candidate if SEMVER_PATTERN.match(candidate) else None


def _model_input_required() -> list[str]:
    """The fields the configured MLM schema requires in a Model Input Object (none when it is not shipped)."""
    try:
        schema = schema_registry().contents(settings.STAC_PUBLISH_MLM_SCHEMA)
    except (LookupError, Unresolvable):
        return []
    model_input = schema.get("$defs", {}).get("ModelInput", {})
    return list(model_input.get("required", []))


def sanitize_hyperparameters(pairs) -> dict:
    """§5.2: characters outside [0-9a-zA-Z_.-] become "_"; on a collision the first key wins."""
    result = {}
    for key, value in pairs:
        clean = re.sub(r"[^0-9a-zA-Z_.-]", "_", str(key))
        if clean and clean not in result:
            result[clean] = value
    return result


def _mlm_tags(version: ModelVersion, model) -> dict[str, tuple[str, object]]:
    """The mlm:* tags (version over model) as (text, value parsed as JSON when it is JSON)."""
    merged = dict(RegisteredModelTag.objects.filter(registered_model=model, key__startswith="mlm:").values_list("key", "value"))
    merged.update(ModelVersionTag.objects.filter(model_version=version, key__startswith="mlm:").values_list("key", "value"))
    tags = {}
    for key, raw in merged.items():
        if key not in ITEM_TAG_FIELDS | ASSET_TAG_FIELDS:
            logger.warning("stac: %s v%s: tag %s ignored: not an MLM item field the schema accepts",
                           model.name, version.version, key)
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        tags[key] = (raw, value)
    return tags


def _columns_object(specs: list[dict], role: str, tasks: list[str]) -> dict:
    columns = [f"{index if spec.get('name') is None else spec['name']} ({spec.get('type') or 'unknown'})"
               for index, spec in enumerate(specs)]
    types = {COLUMN_TYPES.get(spec.get("type")) for spec in specs}
    data_type = types.pop() if len(types) == 1 and None not in types else "other"
    structure = {"shape": [-1, len(specs)], "dim_order": ["batch", "feature"], "data_type": data_type}
    obj = {"name": role, "description": f"Columns: {', '.join(columns)}"}
    if role == "output":
        obj["tasks"] = tasks
    obj["input" if role == "input" else "result"] = structure
    return obj


def _tensor_object(spec: dict, role: str, index: int, tasks: list[str]) -> dict:
    name = spec.get("name") or (role if index == 0 else f"{role}-{index + 1}")
    tensor = spec.get("tensor-spec") or {}
    shape = tensor.get("shape")
    if not (isinstance(shape, list) and shape and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)):
        raise NotPublishable(f"mlm:{role}: the tensor {name!r} of the MLmodel signature has no usable shape "
                             f"({shape!r}); set the mlm:{role} tag")
    batch = ["batch"] if shape[0] == -1 else []
    dim_order = batch + [f"dim-{_letters(i)}" for i in range(len(shape) - len(batch))]
    dtype = str(tensor.get("dtype", ""))
    structure = {"shape": shape, "dim_order": dim_order, "data_type": dtype if dtype in TENSOR_TYPES else "other"}
    obj = {"name": name}
    if role == "output":
        obj["tasks"] = tasks
    obj["input" if role == "input" else "result"] = structure
    return obj


def _letters(index: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa: dimension names may not contain digits."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("a") + remainder) + letters
    return letters


def _utc(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def _json_path(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "item"


# --- the model's files ----------------------------------------------------------------------------

class _ModelFiles:
    """MLmodel, requirements.txt and the listing of the version's model directory in the artifact store."""

    def __init__(self, root: str, mlmodel: dict, requirements: str):
        self.root = root
        self.mlmodel = mlmodel
        self.requirements = requirements
        flavors = mlmodel.get("flavors")
        self.flavors = flavors if isinstance(flavors, dict) else {}

    @classmethod
    def read(cls, version: ModelVersion) -> "_ModelFiles":
        root = store_path_from_uri(version.storage_location or "") if version.storage_location else None
        if root is None:
            raise NotPublishable(f"MLmodel: the version's files ({version.storage_location!r}) are not in this "
                                 "server's artifact store, so its MLmodel cannot be read")
        text = _read(join(root, "MLmodel"), MLMODEL_MAX_BYTES)
        if text is None:
            raise NotPublishable(f"MLmodel: no MLmodel file at {version.storage_location}/MLmodel")
        try:
            mlmodel = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise NotPublishable(f"MLmodel: not valid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(mlmodel, dict):
            raise NotPublishable("MLmodel: not a YAML mapping")
        requirements = _read(join(root, "requirements.txt"), REQUIREMENTS_MAX_BYTES) or ""
        return cls(root, mlmodel, requirements)

    def main_flavor(self) -> str | None:
        return next((name for name in self.flavors if name != "python_function"), None)

    def flavor_version(self, flavor: str | None) -> str | None:
        """The flavor's own version key (e.g. sklearn_version), else the pin in requirements.txt."""
        if not flavor:
            return None
        config = self.flavors.get(flavor)
        if isinstance(config, dict):
            keys = [f"{flavor}_version"] + [k for k in config if k.endswith("_version") and k not in {"python_version", "mlflow_version"}]
            for key in keys:
                if config.get(key) not in (None, ""):
                    return str(config[key])
        package = _normalise(FLAVOR_PACKAGES.get(flavor, flavor))
        for line in self.requirements.splitlines():
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;#,]+)", line)
            if match and _normalise(match.group(1)) == package:
                return match.group(2)
        return None

    def signature(self, role: str) -> list[dict] | None:
        key = "inputs" if role == "input" else "outputs"
        signature = self.mlmodel.get("signature")
        raw = signature.get(key) if isinstance(signature, dict) else None
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raise NotPublishable(f"mlm:{role}: the MLmodel signature's {key} is not valid JSON; set the mlm:{role} tag") from None
        if raw in (None, []):
            return None
        if not isinstance(raw, list) or not all(isinstance(spec, dict) for spec in raw):
            raise NotPublishable(f"mlm:{role}: the MLmodel signature's {key} is not a list of specs; set the mlm:{role} tag")
        return raw

    def model_file(self) -> tuple[str, int | None]:
        """§5.5: python_function's model_path (or data) when it is a file, else MLmodel; with its size if listed."""
        pyfunc = self.flavors.get("python_function")
        path = None
        if isinstance(pyfunc, dict):
            path = pyfunc.get("model_path") or pyfunc.get("data")
        if isinstance(path, str):
            parts = [p for p in path.split("/") if p not in ("", ".")]
            if parts and ".." not in parts:
                entry = self._entry("/".join(parts))
                if entry is not None and not entry.is_dir:
                    return "/".join(parts), entry.file_size
        entry = self._entry("MLmodel")
        return "MLmodel", entry.file_size if entry is not None else None

    def _entry(self, path: str):
        parent, name = posixpath.split(path)
        try:
            entries = artifact_store().listdir(join(self.root, parent))
        except MlflowError as err:
            if err.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                return None
            raise _retry(f"listing {join(self.root, parent)} in the artifact store: {err.message}") from None
        except OSError as err:
            raise _retry(f"listing {join(self.root, parent)} in the artifact store: {err}") from None
        return next((entry for entry in entries if entry.path == name), None)


def _read(path: str, limit: int) -> str | None:
    """A small text file of the artifact store; None when it is not there."""
    try:
        download = artifact_store().open(path)
    except MlflowError as err:
        if err.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise _retry(f"reading {path} from the artifact store: {err.message}") from None
    data = bytearray()
    try:
        for chunk in download.chunks:
            data += chunk
            if len(data) > limit:
                raise NotPublishable(f"{posixpath.basename(path)}: larger than {limit} bytes")
    except OSError as err:
        raise _retry(f"reading {path} from the artifact store: {err}") from None
    finally:
        close = getattr(download.chunks, "close", None)
        if close is not None:
            close()
    return data.decode("utf-8", errors="replace")


def _retry(message: str) -> Exception:
    """The artifact store is unwell: the publisher tries again later rather than holding the version."""
    from stac_publish.publisher import Retry  # the publisher imports this module

    return Retry(message)


def _normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


# --- the shipped schemas --------------------------------------------------------------------------

@functools.cache
def _schema_files() -> dict[str, dict]:
    """URL -> schema, for every file under schemas/ (its path is its URL without https://) and its own $id."""
    schemas = {}
    for path in sorted(SCHEMA_DIR.rglob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        schemas[f"https://{path.relative_to(SCHEMA_DIR).as_posix()}"] = contents
        own_id = str(contents.get("$id", "")).rstrip("#")
        if own_id:
            schemas.setdefault(own_id, contents)
    return schemas


def shipped_schema_uris() -> list[str]:
    return sorted(uri for uri in _schema_files() if uri.endswith("schema.json") or uri.endswith("item.json"))


@functools.cache
def schema_registry() -> Registry:
    """Every shipped schema, and nothing else: a $ref outside them is Unresolvable, never fetched."""
    return Registry().with_resources(
        (uri, Resource.from_contents(contents, default_specification=DRAFT7))
        for uri, contents in _schema_files().items()
    ).crawl()


@functools.cache
def _validator(uri: str) -> Draft7Validator:
    return Draft7Validator(schema_registry().contents(uri), registry=schema_registry())


# --- the reason a version is held, as a tag on it -------------------------------------------------

def record_problem(model_version_id: int | None, reason: str) -> None:
    """The reason a version is held, as the tag PROBLEM_TAG on it, so its owners see it in MLflow.

    Written through the ORM, not the registry services: those emit the signals that queue publications, and a
    problem note must not trigger another attempt.
    """
    if model_version_id is None:
        return
    if not ModelVersion.objects.filter(pk=model_version_id).exclude(current_stage=DELETED_STAGE).exists():
        return
    try:
        with transaction.atomic():
            ModelVersionTag.objects.update_or_create(model_version_id=model_version_id, key=PROBLEM_TAG,
                                                     defaults={"value": reason[:PROBLEM_MAX_LENGTH]})
    except IntegrityError:
        pass  # the version was deleted meanwhile, or a racing writer recorded it first


def clear_problem(model_version_id: int | None) -> None:
    """Removes the PROBLEM_TAG of a version that published fine (no signal, as record_problem)."""
    if model_version_id is not None:
        ModelVersionTag.objects.filter(model_version_id=model_version_id, key=PROBLEM_TAG).delete()
