"""Reads: experiments, runs, metric history and logged models; searches compile to one SQL query per page."""

import base64
import dataclasses
import hashlib
import json

from django.db.models import Case, Count, Exists, F, FilteredRelation, OuterRef, Q, Subquery, Value, When, Window
from django.db.models.functions import Greatest, Mod, RowNumber

from mlflow_sh.errors import MlflowError
from mlflow_sh.prepared import PreparedSearch
from mlflow_sh.wire import offset_from_token, page_token, paged
from tracking import payloads, search
from tracking.lookups import Values
from tracking.models import (
    ACTIVE,
    DELETED,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    LatestMetric,
    LoggedModel,
    LoggedModelParam,
    LoggedModelTag,
    Metric,
    Param,
    Run,
    RunTag,
)

VIEW_STAGES = {"ACTIVE_ONLY": [ACTIVE], "DELETED_ONLY": [DELETED], "ALL": [ACTIVE, DELETED]}
LOOKUPS = {"=": "exact", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "LIKE": "like", "ILIKE": "ilike", "IN": "in"}
RUN_COLUMNS = {
    "run_id": "run_uuid", "run_name": "name", "status": "status", "user_id": "user_id", "artifact_uri": "artifact_uri",
    "start_time": "start_time", "end_time": "end_time",
}
EXPERIMENT_COLUMNS = {
    "name": "name", "experiment_id": "experiment_id", "creation_time": "creation_time", "last_update_time": "last_update_time",
}
DATASET_CONTEXT_TAG = "mlflow.data.context"
MAX_SEARCH_RESULTS = 50000


def experiment_not_found(experiment_id) -> MlflowError:
    return MlflowError.not_found(f"No Experiment with id={experiment_id} exists")


def run_not_found(run_id: str) -> MlflowError:
    return MlflowError.not_found(f"Run with id={run_id} not found")


def value_q(column: str, op: str, value) -> Q:
    """One comparison on one column, with SQL's meaning (NULL matches nothing)."""
    if op == "NOT IN":
        return ~Q(**{f"{column}__in": value}) & Q(**{f"{column}__isnull": False})
    if op == "IS NULL":
        return Q(**{f"{column}__isnull": True})
    if op == "IS NOT NULL":
        return Q(**{f"{column}__isnull": False})
    return Q(**{f"{column}__{LOOKUPS[op]}": value})


def keyed_q(rows, key: str, op: str, value) -> Q:
    """A param/tag clause: the run (or experiment) has the key with a matching value; IS NULL: lacks the key."""
    rows = rows.filter(key=key)
    if op == "IS NULL":
        return ~Q(Exists(rows))
    if op == "IS NOT NULL":
        return Q(Exists(rows))
    return Q(Exists(rows.filter(value_q("value", op, value))))


def page(query, *, max_results: int, token: str | None) -> tuple[list, str | None]:
    return paged(lambda offset, limit: list(query[offset: offset + limit]), max_results=max_results, token=token)


def check_max_results(max_results: int | None, *, limit: int, default: int | None = None, name: str = "max_results") -> int:
    if max_results is None:
        if default is None:
            raise MlflowError.invalid(f"Missing value for required parameter '{name}'.")
        return default
    if max_results <= 0 or max_results > limit:
        raise MlflowError.invalid(
            f"Invalid value {max_results} for parameter '{name}' supplied. It must be at most {limit}, and greater than 0."
        )
    return max_results


def direction(expression, ascending: bool):
    return expression.asc(nulls_last=True) if ascending else expression.desc(nulls_last=True)


# --- experiments --------------------------------------------------------------------------------


def experiment_get(experiment_id: int) -> dict:
    found = payloads.experiments([experiment_id])
    if not found:
        raise experiment_not_found(experiment_id)
    return found[0]


def experiment_get_by_name(name: str) -> dict:
    rows = list(payloads.experiment_rows(Experiment.objects.filter(name=name)))
    if not rows:
        raise MlflowError.not_found(f"Could not find experiment with name '{name}'")
    return payloads.experiment(rows[0])


EXPERIMENTS_SEARCH = PreparedSearch()


def experiments_search(*, view_type: str, filter_string: str, order_by: list[str], max_results: int,
                       token: str | None, projects: list[str] | None = None) -> tuple[list[dict], str | None]:
    """`projects`: the readable ones (None: no restriction); a condition of the query, before paging."""
    stages = VIEW_STAGES[view_type or "ACTIVE_ONLY"]
    clauses = [_experiment_clause(clause) for clause in search.parse_filter(filter_string, search.EXPERIMENTS)]
    order_bys = tuple(search.parse_order_by(order_by, search.EXPERIMENTS))

    def build(projects: list[str] | None, clauses: list[search.Comparison]):
        query = Experiment.objects.filter(lifecycle_stage__in=stages)
        if projects is not None:
            query = query.filter(project__in=projects)
        for clause in clauses:
            query = query.filter(_experiment_clause_q(clause))
        ordering = [direction(F(EXPERIMENT_COLUMNS[o.key]), o.ascending) for o in order_bys]
        return payloads.experiment_rows(
            query.order_by(*ordering, F("creation_time").desc(nulls_last=True), "experiment_id"))

    rows, next_token = EXPERIMENTS_SEARCH.page(shape=(tuple(stages), order_bys), build=build, projects=projects,
                                               clauses=clauses, max_results=max_results, token=token)
    return [payloads.experiment(row) for row in rows], next_token


def _experiment_clause(clause: search.Comparison) -> search.Comparison:
    """The clause with its experiment ids as integers (checked before the query is built)."""
    if clause.entity == "tag" or clause.key != "experiment_id":
        return clause
    return dataclasses.replace(clause, value=_experiment_ids(clause.value))


def _experiment_clause_q(clause: search.Comparison) -> Q:
    if clause.entity == "tag":
        return keyed_q(ExperimentTag.objects.filter(experiment=OuterRef("pk")), clause.key, clause.op, clause.value)
    return value_q(EXPERIMENT_COLUMNS[clause.key], clause.op, clause.value)


def _experiment_ids(value):
    def as_int(text):
        try:
            return int(text)
        except (TypeError, ValueError):
            raise MlflowError.invalid(f"Invalid experiment ID '{text}'. Experiment ID must be a valid integer.") from None

    return tuple(as_int(v) for v in value) if isinstance(value, tuple) else as_int(value)


# --- runs ---------------------------------------------------------------------------------------


def run_get(run_id: str) -> dict:
    found = payloads.runs([run_id])
    if not found:
        raise run_not_found(run_id)
    return found[0]


def run_info_get(run_id: str) -> dict:
    found = payloads.run_infos([run_id])
    if run_id not in found:
        raise run_not_found(run_id)
    return found[run_id]


def runs_search(*, experiment_ids: list[int], filter_string: str, run_view_type: str, max_results: int,
                order_by: list[str], token: str | None, projects: list[str] | None = None) -> tuple[list[dict], str | None]:
    """`projects`: the readable ones (None: no restriction); a condition of the query, before paging."""
    query = Run.objects.filter(experiment_id__in=experiment_ids, lifecycle_stage__in=VIEW_STAGES[run_view_type])
    if projects is not None:
        query = query.filter(experiment__project__in=projects)
    for clause in search.parse_filter(filter_string, search.RUNS):
        query = query.filter(_run_clause_q(clause))
    query, ordering = _run_ordering(query, search.parse_order_by(order_by, search.RUNS))
    query = query.order_by(*ordering, F("start_time").desc(nulls_last=True), "run_uuid")
    ids, next_token = page(query.values_list("run_uuid", flat=True), max_results=max_results, token=token)
    return payloads.runs(ids), next_token


def _run_clause_q(clause: search.Comparison) -> Q:
    run = OuterRef("pk")
    if clause.entity == "metric":
        rows = LatestMetric.objects.filter(run=run, key=clause.key)
        if clause.op == "!=":  # NaN differs from every number; nothing else about NaN matches
            return Q(Exists(rows.filter(Q(is_nan=True) | Q(value__ne=clause.value))))
        return Q(Exists(rows.filter(value_q("value", clause.op, clause.value), is_nan=False)))
    if clause.entity == "param":
        return keyed_q(Param.objects.filter(run=run), clause.key, clause.op, clause.value)
    if clause.entity == "tag":
        return keyed_q(RunTag.objects.filter(run=run), clause.key, clause.op, clause.value)
    if clause.entity == "dataset":
        inputs = DatasetInput.objects.filter(run=run)
        if clause.key == "context":
            inputs = inputs.filter(tags__key=DATASET_CONTEXT_TAG)
            return Q(Exists(inputs.filter(value_q("tags__value", clause.op, clause.value))))
        return Q(Exists(inputs.filter(value_q(f"dataset__{clause.key}", clause.op, clause.value))))
    return value_q(RUN_COLUMNS[clause.key], clause.op, clause.value)


def _run_ordering(query, order_bys: list[search.OrderBy]):
    """ORDER BY terms; a metric, param or tag sort is one LEFT JOIN on its (run, key) unique index."""
    ordering = []
    for i, order in enumerate(order_bys):
        if order.entity == "attribute":
            ordering.append(direction(F(RUN_COLUMNS[order.key]), order.ascending))
            continue
        alias = f"order_{i}"
        relation = {"metric": "latest_metrics", "param": "params", "tag": "tags"}[order.entity]
        query = query.annotate(**{alias: FilteredRelation(relation, condition=Q(**{f"{relation}__key": order.key}))})
        if order.entity == "metric":
            # numbers first, then NaN, then runs without the metric, in either direction
            ordering.append(Case(
                When(**{f"{alias}__is_nan": True}, then=Value(1)),
                When(**{f"{alias}__value__isnull": True}, then=Value(2)),
                default=Value(0),
            ).asc())
        ordering.append(direction(F(f"{alias}__value"), order.ascending))
    return query, ordering


# --- metric history -----------------------------------------------------------------------------


METRIC_POINT_COLUMNS = ("key", "value", "timestamp", "step", "is_nan")
HISTORY_ORDER = ("timestamp", "step", "value")


def metric_history(*, run_id: str, key: str, max_results: int | None, token: str | None) -> tuple[list[dict], str | None]:
    query = Metric.objects.filter(run_id=run_id, key=key).order_by(*HISTORY_ORDER).values_list(*METRIC_POINT_COLUMNS)
    if max_results is None and not token:
        rows, next_token = list(query), None
    else:
        rows, next_token = page(query, max_results=max_results or MAX_SEARCH_RESULTS, token=token)
    return [payloads.metric_point(*row) for row in rows], next_token


def metric_history_bulk(*, run_ids: list[str], key: str, max_results: int) -> list[dict]:
    rows = (
        Metric.objects.filter(run_id__any=Values(run_ids), key=key)
        .order_by("run_id", *HISTORY_ORDER).values_list("run_id", *METRIC_POINT_COLUMNS)[:max_results]
    )
    return [{**payloads.metric_point(*row[1:]), "run_id": row[0]} for row in rows]


def metric_history_bulk_interval(*, run_ids: list[str], key: str, start_step: int | None, end_step: int | None,
                                 max_results: int) -> list[dict]:
    """Per run, at most max_results points evenly spread over its history (always its first and last), in SQL.

    Sampling rows rather than steps keeps the answer bounded when many points share a step.
    """
    points = Metric.objects.filter(run_id__any=Values(run_ids), key=key)
    if start_step is not None:
        points = points.filter(step__gte=start_step, step__lte=end_step)
    in_run_order = [F("step").asc(), F("timestamp").asc(), F("value").asc()]
    points = points.annotate(
        position=Window(RowNumber(), partition_by=[F("run_id")], order_by=in_run_order),
        total=Window(Count("id"), partition_by=[F("run_id")]),
    )
    # The last point, plus every stride-th one before it: max_results - 1 of them at most.
    spread_over = max(max_results - 1, 1)
    stride = Greatest((F("total") - 1 + (spread_over - 1)) / spread_over, 1)  # ceil((total - 1) / spread_over)
    points = points.annotate(place_in_stride=Mod(F("position") - 1, stride))
    kept = Q(position=F("total"))
    if max_results > 1:
        kept |= Q(place_in_stride=0, position__lt=F("total"))
    sampled = points.filter(kept)
    rows = sampled.order_by("run_id", *in_run_order).values_list("run_id", *METRIC_POINT_COLUMNS)
    by_run: dict[str, list[dict]] = {run_id: [] for run_id in run_ids}
    for row in rows:
        by_run[row[0]].append({**payloads.metric_point(*row[1:]), "run_id": row[0]})
    return [point for run_id in dict.fromkeys(run_ids) for point in by_run[run_id]]


def dataset_summaries(experiment_ids: list[int]) -> list[dict]:
    rows = (
        DatasetInput.objects.filter(dataset__experiment_id__in=experiment_ids)
        .annotate(context=Subquery(
            InputTag.objects.filter(dataset_input=OuterRef("pk"), key=DATASET_CONTEXT_TAG).values("value")[:1]
        ))
        .values_list("dataset__experiment_id", "dataset__name", "dataset__digest", "context")
        .distinct()
        .order_by("dataset__experiment_id", "dataset__name", "dataset__digest", "context")[:1000]
    )
    summaries = []
    for experiment_id, name, digest, context in rows:
        summary = {"experiment_id": str(experiment_id), "name": name, "digest": digest}
        if context:
            summary["context"] = context
        summaries.append(summary)
    return summaries


# --- logged models ------------------------------------------------------------------------------

LOGGED_MODEL_COLUMNS = {
    "name": "name", "model_id": "model_id", "model_type": "model_type", "status": "status",
    "source_run_id": "source_run_id", "creation_timestamp": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
}


def logged_model_not_found(model_id: str) -> MlflowError:
    return MlflowError.not_found(f"Logged model with ID '{model_id}' not found.")


def logged_model_get(model_id: str, *, allow_deleted: bool = False) -> dict:
    visible = LoggedModel.objects.filter(pk=model_id)
    if not allow_deleted:
        visible = visible.filter(lifecycle_stage=ACTIVE)
    found = payloads.logged_models(list(visible.values_list("pk", flat=True)))
    if not found:
        raise logged_model_not_found(model_id)
    return found[0]


def logged_model_artifact_root(model_id: str) -> str:
    location = LoggedModel.objects.filter(pk=model_id, lifecycle_stage=ACTIVE).values_list("artifact_location", flat=True).first()
    if location is None:
        raise logged_model_not_found(model_id)
    return location


def logged_models_search(*, experiment_ids: list[int], filter_string: str, datasets: list[dict], order_by: list[dict],
                         max_results: int, token: str | None, projects: list[str] | None = None) -> tuple[list[dict], str | None]:
    """One SQL query per page; the page token is tied to the query it was issued for."""
    query = LoggedModel.objects.filter(experiment_id__in=experiment_ids, lifecycle_stage=ACTIVE)
    if projects is not None:
        query = query.filter(experiment__project__in=projects)
    clauses = search.parse_filter(filter_string, search.LOGGED_MODELS)
    for i, clause in enumerate(clauses):
        query = _logged_model_clause(query, clause, datasets, alias=f"filter_{i}")
    if datasets and not any(clause.entity == "metric" for clause in clauses):
        # datasets alone: the models evaluated on them, as MLflow keeps only those
        query = query.filter(Exists(Metric.objects.filter(_dataset_scope(datasets), model_id=OuterRef("pk"))))
    ordering = []
    for i, order in enumerate(order_by):
        (parsed,) = search.parse_order_by([order["field_name"]], search.LOGGED_MODELS)
        ascending = order["ascending"] if order["ascending"] is not None else True
        if parsed.entity == "metric":
            alias = f"order_{i}"
            scope = [{"dataset_name": order["dataset_name"], "dataset_digest": order["dataset_digest"]}] if order["dataset_name"] else []
            query = query.annotate(**{alias: _latest_model_metric(parsed.key, scope)})
            ordering.append(direction(F(alias), ascending))
        else:
            ordering.append(direction(F(LOGGED_MODEL_COLUMNS[parsed.key]), ascending))
    query = query.order_by(*ordering, F("creation_timestamp_ms").desc(), "model_id")
    bound_to = _query_fingerprint(experiment_ids, filter_string, datasets, order_by)
    ids, next_token = page(query.values_list("model_id", flat=True), max_results=max_results,
                           token=_unbind_token(token, bound_to))
    return payloads.logged_models(ids), next_token and _bind_token(next_token, bound_to)


def _latest_model_metric(key: str, datasets: list[dict]):
    """The model's newest value of a metric (by step, then time), optionally only for some datasets."""
    points = Metric.objects.filter(model_id=OuterRef("pk"), key=key, is_nan=False)
    if datasets:
        points = points.filter(_dataset_scope(datasets))
    return Subquery(points.order_by("-step", "-timestamp", "-value").values("value")[:1])


def _dataset_scope(datasets: list[dict]) -> Q:
    scope = Q()
    for dataset in datasets:
        digest = {"dataset_digest": dataset["dataset_digest"]} if dataset.get("dataset_digest") else {}
        scope |= Q(dataset_name=dataset["dataset_name"], **digest)
    return scope


def _logged_model_clause(query, clause: search.Comparison, datasets: list[dict], *, alias: str):
    model = OuterRef("pk")
    if clause.entity == "metric":  # on the latest value, as MLflow compares logged-model metrics
        query = query.annotate(**{alias: _latest_model_metric(clause.key, datasets)})
        return query.filter(value_q(alias, clause.op, clause.value))
    if clause.entity == "param":
        return query.filter(keyed_q(LoggedModelParam.objects.filter(model=model), clause.key, clause.op, clause.value))
    if clause.entity == "tag":
        return query.filter(keyed_q(LoggedModelTag.objects.filter(model=model), clause.key, clause.op, clause.value))
    return query.filter(value_q(LOGGED_MODEL_COLUMNS[clause.key], clause.op, clause.value))


def _query_fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _bind_token(token: str, fingerprint: str) -> str:
    return base64.b64encode(json.dumps({"offset": offset_from_token(token), "query": fingerprint}).encode()).decode()


def _unbind_token(token: str | None, fingerprint: str) -> str | None:
    if not token:
        return None
    try:
        decoded = json.loads(base64.b64decode(token))
    except ValueError:
        raise MlflowError.invalid("Invalid page token, could not base64-decode") from None
    if not isinstance(decoded, dict) or decoded.get("query") != fingerprint:
        raise MlflowError.invalid(
            "The page token was issued for another search: keep experiment_ids, filter, datasets and order_by "
            "the same across pages."
        )
    return page_token(decoded.get("offset", 0))
