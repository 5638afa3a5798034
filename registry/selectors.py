"""Registry reads; the two searches compile MLflow's grammar into one SQL query per page."""

from django.db.models import Exists, F, OuterRef, Q

from mlflow_sh.errors import MlflowError
from mlflow_sh.prepared import PreparedQuery, PreparedSearch
from registry import payloads
from registry.models import DELETED_STAGE, STAGES, ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelAlias, RegisteredModelTag
from tracking import search
from tracking.selectors import direction, keyed_q, value_q

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


def live_versions():
    return ModelVersion.objects.exclude(current_stage=DELETED_STAGE)


def versions_of(name: str):
    return live_versions().filter(registered_model__name=name)


# The single-object reads, one statement each (see mlflow_sh.prepared).
MODEL_BY_NAME = PreparedQuery(lambda name: payloads.model_rows(RegisteredModel.objects.filter(name=name)), name=str)
LATEST_OF_MODEL = PreparedQuery(
    lambda name: payloads.version_rows(payloads.latest_of(versions_of(name)), with_aliases=True), name=str)
VERSION = PreparedQuery(
    lambda name, version: payloads.version_rows(versions_of(name).filter(version=version), with_aliases=True),
    name=str, version=int)
NEWEST_VERSION = PreparedQuery(
    lambda name: payloads.version_rows(versions_of(name).order_by("-version")[:1], with_aliases=True), name=str)
# one join to the aliases, both conditions on it: this alias, pointing at this version
VERSION_BY_ALIAS = PreparedQuery(
    lambda name, alias: payloads.version_rows(versions_of(name).filter(
        registered_model__aliases__alias=alias, registered_model__aliases__version=F("version")), with_aliases=True),
    name=str, alias=str)


def registered_model_get(name: str) -> dict:
    rows = MODEL_BY_NAME.rows(name=name)
    if not rows:
        raise model_not_found(name)
    # MLflow shows aliases on single-version reads only, not in latest_versions
    latest = [payloads.model_version(row, with_aliases=False) for row in LATEST_OF_MODEL.rows(name=name)]
    return payloads.registered_model(rows[0], latest)


def _version_column(name: str, version, column: str):
    number = version_number(version)
    value = versions_of(name).filter(version=number).values_list(column, flat=True).first()
    if value is None:
        raise version_not_found(name, number)
    return value


def model_version_pk(name: str, version) -> int:
    return _version_column(name, version, "pk")


def model_version_get(name: str, version) -> dict:
    number = version_number(version)
    rows = VERSION.rows(name=name, version=number)
    if not rows:
        raise version_not_found(name, number)
    return payloads.model_version(rows[0])


def download_uri(name: str, version) -> str:
    return _version_column(name, version, "storage_location")


def canonical_stage(stage: str) -> str:
    for known in STAGES:
        if stage.lower() == known.lower():
            return known
    raise MlflowError.invalid(f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}.")


def latest_versions(name: str, stages: list[str]) -> list[dict]:
    wanted = {canonical_stage(stage) for stage in stages} or set(STAGES)
    rows = LATEST_OF_MODEL.rows(name=name)
    if not rows:
        registered_model_pk(name)  # 404 for an unknown model; a model without versions has none to list
    return [payloads.model_version(row) for row in rows if row["current_stage"] in wanted]


def version_by_alias(name: str, alias: str) -> dict:
    """One statement when the alias resolves; the reasons it does not are looked up on that path only."""
    is_latest = alias.lower() == "latest"
    rows = NEWEST_VERSION.rows(name=name) if is_latest else VERSION_BY_ALIAS.rows(name=name, alias=alias)
    if rows:
        return payloads.model_version(rows[0])
    model_pk = registered_model_pk(name)  # 404 for an unknown model
    if is_latest:
        raise MlflowError.not_found(f"Latest version not found for model {name}.")
    number = RegisteredModelAlias.objects.filter(registered_model_id=model_pk, alias=alias).values_list("version", flat=True).first()
    if number is None:
        # 400, not 404, as the reference answers (clients rely on the code only)
        raise MlflowError.invalid(f"Registered model alias {alias} not found.")
    raise version_not_found(name, number)  # the alias points at a deleted version


# --- searches -------------------------------------------------------------------------------------


def _prompt_choice(clauses: list[search.Comparison]) -> tuple[list[search.Comparison], bool]:
    """Prompts hide from model searches unless the filter asks for them, as in MLflow 3: (the other clauses,
    whether the search is for prompts).

    A clause on the prompt tag is decided here: "!= 'true'" keeps models without the tag, which a plain
    tag comparison (the model must have the tag) would drop.
    """
    rest, asks_prompts = [], False
    for clause in clauses:
        if clause.entity == "tag" and clause.key == PROMPT_TAG and clause.op in {"=", "!="}:
            asks_prompts = (clause.op == "=") == (str(clause.value).lower() == "true")
        else:
            rest.append(clause)
    return rest, asks_prompts


def _prompt_scope(asks_prompts: bool, tag_rows) -> Q:
    is_prompt = Q(Exists(tag_rows.filter(key=PROMPT_TAG, value__iexact="true")))
    return is_prompt if asks_prompts else ~is_prompt


def _filtered(query, clauses: list[search.Comparison], tag_rows, columns: dict[str, str]):
    """The query with each clause: a tag comparison on `tag_rows` (correlated to the row), else on a column."""
    for clause in clauses:
        if clause.entity == "tag":
            query = query.filter(keyed_q(tag_rows, clause.key, clause.op, clause.value))
        else:
            query = query.filter(value_q(columns[clause.key], clause.op, clause.value))
    return query


REGISTERED_MODELS_SEARCH = PreparedSearch()
MODEL_VERSIONS_SEARCH = PreparedSearch()


def registered_models_search(*, filter_string: str, order_by: list[str], max_results: int, token: str | None,
                             projects: list[str] | None = None) -> tuple[list[dict], str | None]:
    """`projects`: the readable ones (None: no restriction); a condition of the query, before paging."""
    clauses, asks_prompts = _prompt_choice(search.parse_filter(filter_string, search.REGISTERED_MODELS))
    order_bys = tuple(search.parse_order_by(order_by, search.REGISTERED_MODELS))

    def build(projects: list[str] | None, clauses: list[search.Comparison]):
        query = RegisteredModel.objects.all()
        if projects is not None:
            query = query.filter(project__in=projects)
        model_tags = RegisteredModelTag.objects.filter(registered_model=OuterRef("pk"))
        query = _filtered(query.filter(_prompt_scope(asks_prompts, model_tags)), clauses, model_tags, MODEL_COLUMNS)
        ordering = [direction(F(MODEL_COLUMNS[o.key]), o.ascending) for o in order_bys]
        return payloads.model_rows(query.order_by(*ordering, "name"))

    rows, next_token = REGISTERED_MODELS_SEARCH.page(shape=(asks_prompts, order_bys), build=build, projects=projects,
                                                     clauses=clauses, max_results=max_results, token=token)
    return payloads.registered_models(rows), next_token


def model_versions_search(*, filter_string: str, order_by: list[str], max_results: int, token: str | None,
                          projects: list[str] | None = None) -> tuple[list[dict], str | None]:
    clauses, asks_prompts = _prompt_choice(search.parse_filter(filter_string, search.MODEL_VERSIONS))
    order_bys = tuple(search.parse_order_by(order_by, search.MODEL_VERSIONS))

    def build(projects: list[str] | None, clauses: list[search.Comparison]):
        query = live_versions()
        if projects is not None:  # a version belongs to its registered model's project, never its run's
            query = query.filter(registered_model__project__in=projects)
        query = query.filter(_prompt_scope(
            asks_prompts, RegisteredModelTag.objects.filter(registered_model=OuterRef("registered_model"))))
        query = _filtered(query, clauses, ModelVersionTag.objects.filter(model_version=OuterRef("pk")), VERSION_COLUMNS)
        ordering = ([direction(F(VERSION_COLUMNS[o.key]), o.ascending) for o in order_bys]
                    or [F("last_updated_timestamp").desc()])
        return payloads.version_rows(query.order_by(*ordering, "registered_model__name", "-version"))

    rows, next_token = MODEL_VERSIONS_SEARCH.page(shape=(asks_prompts, order_bys), build=build, projects=projects,
                                                  clauses=clauses, max_results=max_results, token=token)
    return [payloads.model_version(row) for row in rows], next_token
