"""Registry reads; the two searches compile MLflow's grammar into one SQL query per page."""

from django.db.models import Exists, F, OuterRef, Q

from mlflow_sh.errors import MlflowError
from registry import payloads
from registry.models import DELETED_STAGE, STAGES, ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelAlias, RegisteredModelTag
from tracking import search
from tracking.selectors import direction, keyed_q, page, value_q

PROMPT_TAG = "mlflow.prompt.is_prompt"
MODEL_COLUMNS = {"name": "name", "last_updated_timestamp": "last_updated_timestamp", "creation_timestamp": "creation_timestamp"}
VERSION_COLUMNS = {
    "name": "registered_model__name", "run_id": "run_id", "source_path": "source", "version_number": "version",
    "creation_timestamp": "creation_timestamp", "last_updated_timestamp": "last_updated_timestamp",
}


def model_not_found(name: str) -> MlflowError:
    return MlflowError.not_found(f"Registered Model with name={name} not found")


def version_not_found(name: str, version: int) -> MlflowError:
    return MlflowError.not_found(f"Model Version (name={name}, version={version}) not found")


def version_number(version) -> int:
    try:
        return int(str(version).strip())
    except ValueError:
        raise MlflowError.invalid(f"Parameter 'version' must be an integer, got '{version}'.") from None


def registered_model_pk(name: str) -> int:
    pk = RegisteredModel.objects.filter(name=name).values_list("pk", flat=True).first()
    if pk is None:
        raise model_not_found(name)
    return pk


def registered_model_get(name: str) -> dict:
    return payloads.registered_models([registered_model_pk(name)])[0]


def live_versions():
    return ModelVersion.objects.exclude(current_stage=DELETED_STAGE)


def model_version_pk(name: str, version) -> int:
    number = version_number(version)
    pk = live_versions().filter(registered_model__name=name, version=number).values_list("pk", flat=True).first()
    if pk is None:
        raise version_not_found(name, number)
    return pk


def model_version_get(name: str, version) -> dict:
    return payloads.model_versions([model_version_pk(name, version)], with_aliases=True)[0]


def download_uri(name: str, version) -> str:
    return live_versions().filter(pk=model_version_pk(name, version)).values_list("storage_location", flat=True).get()


def canonical_stage(stage: str) -> str:
    for known in STAGES:
        if stage.lower() == known.lower():
            return known
    raise MlflowError.invalid(f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}.")


def latest_versions(name: str, stages: list[str]) -> list[dict]:
    model_pk = registered_model_pk(name)
    wanted = {canonical_stage(stage) for stage in stages} or set(STAGES)
    pks = payloads.latest_version_pks([model_pk]).get(model_pk, [])
    versions = payloads.model_versions(pks, with_aliases=True)
    return [mv for mv in versions if mv["current_stage"] in wanted]


def version_by_alias(name: str, alias: str) -> dict:
    model_pk = registered_model_pk(name)
    if alias.lower() == "latest":
        number = live_versions().filter(registered_model_id=model_pk).order_by("-version").values_list("version", flat=True).first()
        if number is None:
            raise MlflowError.not_found(f"Latest version not found for model {name}.")
    else:
        number = RegisteredModelAlias.objects.filter(registered_model_id=model_pk, alias=alias).values_list("version", flat=True).first()
    if number is None:
        # 400, not 404, as the reference answers (clients rely on the code only)
        raise MlflowError.invalid(f"Registered model alias {alias} not found.")
    return model_version_get(name, number)


# --- searches -------------------------------------------------------------------------------------


def _prompt_scope(clauses: list[search.Comparison], tag_rows) -> tuple[list[search.Comparison], Q]:
    """Prompts hide from model searches unless the filter asks for them, as in MLflow 3.

    A clause on the prompt tag is decided here: "!= 'true'" keeps models without the tag, which a plain
    tag comparison (the model must have the tag) would drop.
    """
    rest = []
    is_prompt = Q(Exists(tag_rows.filter(key=PROMPT_TAG, value__iexact="true")))
    scope = ~is_prompt
    for clause in clauses:
        if clause.entity == "tag" and clause.key == PROMPT_TAG and clause.op in {"=", "!="}:
            asks_prompts = (clause.op == "=") == (str(clause.value).lower() == "true")
            scope = is_prompt if asks_prompts else ~is_prompt
        else:
            rest.append(clause)
    return rest, scope


def registered_models_search(*, filter_string: str, order_by: list[str], max_results: int, token: str | None,
                             projects: list[str] | None = None) -> tuple[list[dict], str | None]:
    """`projects`: the readable ones (None: no restriction); a condition of the query, before paging."""
    query = RegisteredModel.objects.all()
    if projects is not None:
        query = query.filter(project__in=projects)
    clauses, scope = _prompt_scope(search.parse_filter(filter_string, search.REGISTERED_MODELS),
                                   RegisteredModelTag.objects.filter(registered_model=OuterRef("pk")))
    query = query.filter(scope)
    for clause in clauses:
        if clause.entity == "tag":
            query = query.filter(keyed_q(RegisteredModelTag.objects.filter(registered_model=OuterRef("pk")),
                                         clause.key, clause.op, clause.value))
        else:
            query = query.filter(value_q(MODEL_COLUMNS[clause.key], clause.op, clause.value))
    ordering = [direction(F(MODEL_COLUMNS[o.key]), o.ascending) for o in search.parse_order_by(order_by, search.REGISTERED_MODELS)]
    query = query.order_by(*ordering, "name")
    pks, next_token = page(query.values_list("pk", flat=True), max_results=max_results, token=token)
    return payloads.registered_models(pks), next_token


def model_versions_search(*, filter_string: str, order_by: list[str], max_results: int, token: str | None,
                          projects: list[str] | None = None) -> tuple[list[dict], str | None]:
    query = live_versions()
    if projects is not None:  # a version belongs to its registered model's project, never its run's
        query = query.filter(registered_model__project__in=projects)
    clauses, scope = _prompt_scope(search.parse_filter(filter_string, search.MODEL_VERSIONS),
                                   RegisteredModelTag.objects.filter(registered_model=OuterRef("registered_model")))
    query = query.filter(scope)
    for clause in clauses:
        if clause.entity == "tag":
            query = query.filter(keyed_q(ModelVersionTag.objects.filter(model_version=OuterRef("pk")),
                                         clause.key, clause.op, clause.value))
        else:
            query = query.filter(value_q(VERSION_COLUMNS[clause.key], clause.op, clause.value))
    ordering = [direction(F(VERSION_COLUMNS[o.key]), o.ascending) for o in search.parse_order_by(order_by, search.MODEL_VERSIONS)]
    if not ordering:
        ordering = [F("last_updated_timestamp").desc()]
    query = query.order_by(*ordering, "registered_model__name", "-version")
    pks, next_token = page(query.values_list("pk", flat=True), max_results=max_results, token=token)
    return payloads.model_versions(pks), next_token
