"""The GraphQL schema of the MLflow web UI: MLflow's messages in camelCase, each root field one RPC of the
route table, answered by that RPC's handler under that RPC's permission rule.

Type and field names are a contract with the UI (its queries name the input types, and Apollo caches by
`__typename`), so they are MLflow's. Values follow MLflow's GraphQL answers, which read protobuf messages:
an unset field reads as its default (`endTime: "0"` for a running run, `""`, `[]`, an empty object), int64
values are strings, a NaN metric is null. A field that fails is null in `data`, with MLflow's message in
`errors`; `apiError` is declared, as in MLflow, and always null.
"""

import functools
import logging
from collections import defaultdict

import graphene
from graphql import GraphQLArgument, GraphQLDirective, GraphQLError, GraphQLNonNull, GraphQLString, Undefined
from graphql.language import DirectiveLocation, IntValueNode, StringValueNode
from graphql.type import specified_directives

from mlflow_sh import wire
from mlflow_sh.errors import HttpAnswer, as_mlflow_error
from permissions.decisions import NOT_AUTHENTICATED, authorize
from registry.routes import RPCS as REGISTRY_RPCS
from tracking import payloads as tracking_payloads
from tracking.routes import RPCS as TRACKING_RPCS

logger = logging.getLogger("mlflow_sh.graphql")

# By name: an RPC served at two methods (SearchModelVersions GET and POST) has one rule, handler and fields.
RPCS = {rpc.name: rpc for rpc in [*TRACKING_RPCS, *REGISTRY_RPCS]}


# --- answering a field as its REST route would -----------------------------------------------------


def call_rpc(request, rpc_name: str, arguments: dict) -> dict:
    """The REST answer of the RPC to these fields: decoded by its field table, checked against its rule
    (401/403, and a search's project scope), answered by its handler."""
    rpc = RPCS[rpc_name]
    data = wire.parse_fields(rpc.fields or {}, arguments)
    authorize(request, rpc.rule, data)
    return rpc.handler(request, data)


def field_error(exc: Exception) -> GraphQLError:
    """The error a failed field reports: MLflow's message, as the REST route's body or text would carry it."""
    if isinstance(exc, HttpAnswer):
        if exc.response.status_code == 403:
            return GraphQLError(exc.response.content.decode())
        return GraphQLError(NOT_AUTHENTICATED)  # a browser's login page or redirect means nothing in a field
    err = as_mlflow_error(exc)
    if err.status >= 500:
        logger.error("GraphQL field failed", exc_info=exc)
    return GraphQLError(err.message, original_error=exc)


def mlflow_errors(resolver):
    """graphql-core would report any exception with its raw text (SQL included) and log nothing: this is the
    GraphQL side of the REST exception handler."""

    @functools.wraps(resolver)
    def resolve(root, info, **arguments):
        try:
            return resolver(root, info, **arguments)
        except GraphQLError:
            raise
        except Exception as exc:
            raise field_error(exc) from exc

    return resolve


def request_fields(graphql_input) -> dict:
    """A GraphQL input object as the REST request dict: its keys are already snake_case; enums by name."""
    return {key: getattr(value, "name", value) for key, value in (graphql_input or {}).items()}


# --- scalars, enums and the proto defaults of unset fields -----------------------------------------------


class LongString(graphene.Scalar):
    """An int64 written as a string: JavaScript numbers lose precision past 2**53."""

    @staticmethod
    def serialize(value):
        return str(int(value))

    @staticmethod
    def parse_literal(node, _variables=None):
        # Kept as written: the RPC's field table parses it, with MLflow's message for a bad value.
        if isinstance(node, IntValueNode | StringValueNode):
            return node.value
        return Undefined

    @staticmethod
    def parse_value(value):
        return value


def string():
    return graphene.String(default_value="")


def long():
    return LongString(default_value=0)


# An unset message field reads as an empty message, each of its fields as its own default (a value, not an
# empty dict: graphene turns defaults into dataclass defaults, which may not be mutable).
UNSET_MESSAGE = object()


def message(of):
    return graphene.Field(of, default_value=UNSET_MESSAGE)


def messages(of):
    return graphene.List(graphene.NonNull(of), default_value=())


def metric_value(metric: dict, info):
    """Float cannot carry NaN: MLflow answers null for it (payloads write it as the string "NaN")."""
    value = metric.get("value", 0.0)
    return None if value == "NaN" else value


class MlflowRunStatus(graphene.Enum):
    RUNNING = 1
    SCHEDULED = 2
    FINISHED = 3
    FAILED = 4
    KILLED = 5


class MlflowViewType(graphene.Enum):
    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3


class MlflowModelVersionStatus(graphene.Enum):
    PENDING_REGISTRATION = 1
    FAILED_REGISTRATION = 2
    READY = 3


class MlflowDeploymentJobConnectionState(graphene.Enum):
    DEPLOYMENT_JOB_CONNECTION_STATE_UNSPECIFIED = 0
    NOT_SET_UP = 1
    CONNECTED = 2
    NOT_FOUND = 3
    REQUIRED_PARAMETERS_CHANGED = 4


class MlflowModelVersionDeploymentJobStateDeploymentJobRunState(graphene.Enum):
    DEPLOYMENT_JOB_RUN_STATE_UNSPECIFIED = 0
    NO_VALID_DEPLOYMENT_JOB_FOUND = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    PENDING = 5
    APPROVAL = 6


class ErrorDetail(graphene.ObjectType):
    field = graphene.String()
    message = graphene.String()


class ApiError(graphene.ObjectType):
    code = graphene.String()
    message = graphene.String()
    help_url = graphene.String()
    trace_id = graphene.String()
    error_details = graphene.List(ErrorDetail)


def api_error():
    return graphene.Field(ApiError)


# --- experiments ------------------------------------------------------------------------------------


class MlflowExperimentTag(graphene.ObjectType):
    key = string()
    value = string()


class MlflowExperiment(graphene.ObjectType):
    experiment_id = string()
    name = string()
    artifact_location = string()
    lifecycle_stage = string()
    last_update_time = long()
    creation_time = long()
    tags = messages(MlflowExperimentTag)
    effective_trace_archival_retention = string()
    workspace = string()


class MlflowGetExperimentResponse(graphene.ObjectType):
    experiment = message(MlflowExperiment)
    api_error = api_error()


# --- model versions ---------------------------------------------------------------------------------


class MlflowModelVersionTag(graphene.ObjectType):
    key = string()
    value = string()


class MlflowModelParam(graphene.ObjectType):
    name = string()
    value = string()


class MlflowModelMetric(graphene.ObjectType):
    key = string()
    value = graphene.Float(resolver=metric_value)
    timestamp = long()
    step = long()
    dataset_name = string()
    dataset_digest = string()
    model_id = string()
    run_id = string()


class MlflowModelVersionDeploymentJobState(graphene.ObjectType):
    job_id = string()
    run_id = string()
    job_state = graphene.Field(MlflowDeploymentJobConnectionState,
                               default_value="DEPLOYMENT_JOB_CONNECTION_STATE_UNSPECIFIED")
    run_state = graphene.Field(MlflowModelVersionDeploymentJobStateDeploymentJobRunState,
                               default_value="DEPLOYMENT_JOB_RUN_STATE_UNSPECIFIED")
    current_task_name = string()


class MlflowModelVersion(graphene.ObjectType):
    name = string()
    version = string()
    creation_timestamp = long()
    last_updated_timestamp = long()
    user_id = string()
    current_stage = string()
    description = string()
    source = string()
    run_id = string()
    status = graphene.Field(MlflowModelVersionStatus, default_value="PENDING_REGISTRATION")
    status_message = string()
    tags = messages(MlflowModelVersionTag)
    run_link = string()
    aliases = graphene.List(graphene.String, default_value=())
    model_id = string()
    model_params = messages(MlflowModelParam)
    model_metrics = messages(MlflowModelMetric)
    deployment_job_state = message(MlflowModelVersionDeploymentJobState)


class MlflowSearchModelVersionsResponse(graphene.ObjectType):
    model_versions = messages(MlflowModelVersion)
    next_page_token = string()
    api_error = api_error()


# --- runs ---------------------------------------------------------------------------------------------


class MlflowRunInfo(graphene.ObjectType):
    run_id = string()
    run_uuid = string()
    run_name = string()
    experiment_id = string()
    user_id = string()
    status = graphene.Field(MlflowRunStatus, default_value="RUNNING")
    start_time = long()
    end_time = long()
    artifact_uri = string()
    lifecycle_stage = string()


class MlflowMetricExtension(graphene.ObjectType):
    key = string()
    value = graphene.Float(resolver=metric_value)
    timestamp = long()
    step = long()
    dataset_name = string()
    dataset_digest = string()
    model_id = string()
    run_id = string()


class MlflowParam(graphene.ObjectType):
    key = string()
    value = string()


class MlflowRunTag(graphene.ObjectType):
    key = string()
    value = string()


class MlflowRunData(graphene.ObjectType):
    metrics = messages(MlflowMetricExtension)
    params = messages(MlflowParam)
    tags = messages(MlflowRunTag)


class MlflowDataset(graphene.ObjectType):
    name = string()
    digest = string()
    source_type = string()
    source = string()
    schema = string()
    profile = string()


class MlflowInputTag(graphene.ObjectType):
    key = string()
    value = string()


class MlflowDatasetInput(graphene.ObjectType):
    tags = messages(MlflowInputTag)
    dataset = message(MlflowDataset)


class MlflowModelInput(graphene.ObjectType):
    model_id = string()


class MlflowRunInputs(graphene.ObjectType):
    dataset_inputs = messages(MlflowDatasetInput)
    model_inputs = messages(MlflowModelInput)


class MlflowModelOutput(graphene.ObjectType):
    model_id = string()
    step = long()


class MlflowRunOutputs(graphene.ObjectType):
    model_outputs = messages(MlflowModelOutput)


class RunNode(dict):
    """A run as its REST route answers it, knowing the answer it belongs to."""

    def __init__(self, run: dict, batch: "RunBatch"):
        super().__init__(run)
        self.batch = batch


class RunBatch:
    """The runs of one answer. Their experiments and model versions are read once for all of them, when
    first asked for, so a page of runs costs the same few queries whatever its size."""

    def __init__(self, request, runs: list[dict]):
        self.request = request
        self.nodes = [RunNode(run, self) for run in runs]
        self.answers: dict[str, object] = {}

    def once(self, name: str, read):
        if name not in self.answers:
            try:
                self.answers[name] = read()
            except Exception as exc:  # kept: each run asking again would repeat the failure (and its log)
                self.answers[name] = field_error(exc)
        if isinstance(self.answers[name], GraphQLError):
            raise self.answers[name]
        return self.answers[name]

    def experiment(self, experiment_id: str) -> dict:
        # A run and its experiment belong to the experiment's project, so whoever may read the run (GetRun's
        # rule, or SearchRuns' project scope) may read its experiment: no second check.
        return self.once("experiments", self._experiments)[experiment_id]

    def _experiments(self) -> dict[str, dict]:
        ids = list(dict.fromkeys(int(node["info"]["experiment_id"]) for node in self.nodes))
        return {experiment["experiment_id"]: experiment for experiment in tracking_payloads.experiments(ids)}

    def model_versions(self, run_id: str) -> list[dict]:
        return self.once("model_versions", self._model_versions).get(run_id, [])

    def _model_versions(self) -> dict[str, list[dict]]:
        # A version belongs to its registered model's project, not to its run's: one search, under
        # SearchModelVersions' rule, keeps those of projects the caller may not read out.
        quoted = ", ".join("'" + node["info"]["run_id"].replace("'", "''") + "'" for node in self.nodes)
        answer = call_rpc(self.request, "SearchModelVersions", {"filter": f"run_id IN ({quoted})"})
        by_run = defaultdict(list)
        for version in answer.get("model_versions", []):
            by_run[version.get("run_id")].append(version)
        return by_run


class MlflowRunExtension(graphene.ObjectType):
    info = message(MlflowRunInfo)
    data = message(MlflowRunData)
    inputs = message(MlflowRunInputs)
    outputs = message(MlflowRunOutputs)
    experiment = graphene.Field(MlflowExperiment)
    model_versions = graphene.List(graphene.NonNull(MlflowModelVersion))

    @staticmethod
    @mlflow_errors
    def resolve_experiment(run: RunNode, info):
        return run.batch.experiment(run["info"]["experiment_id"])

    @staticmethod
    @mlflow_errors
    def resolve_model_versions(run: RunNode, info):
        return run.batch.model_versions(run["info"]["run_id"])


class MlflowGetRunResponse(graphene.ObjectType):
    run = graphene.Field(MlflowRunExtension)
    api_error = api_error()


class MlflowSearchRunsResponse(graphene.ObjectType):
    runs = messages(MlflowRunExtension)
    next_page_token = string()
    api_error = api_error()


# --- metric history, artifacts, datasets -----------------------------------------------------------------


class MlflowMetricWithRunId(graphene.ObjectType):
    key = string()
    value = graphene.Float(resolver=metric_value)
    timestamp = long()
    step = long()
    run_id = string()


class MlflowGetMetricHistoryBulkIntervalResponse(graphene.ObjectType):
    metrics = messages(MlflowMetricWithRunId)
    api_error = api_error()


class MlflowFileInfo(graphene.ObjectType):
    path = string()
    is_dir = graphene.Boolean(default_value=False)
    file_size = long()


class MlflowListArtifactsResponse(graphene.ObjectType):
    root_uri = string()
    files = messages(MlflowFileInfo)
    next_page_token = string()
    api_error = api_error()


class MlflowDatasetSummary(graphene.ObjectType):
    experiment_id = string()
    name = string()
    digest = string()
    context = string()


class MlflowSearchDatasetsResponse(graphene.ObjectType):
    dataset_summaries = messages(MlflowDatasetSummary)
    api_error = api_error()


class Test(graphene.ObjectType):
    output = graphene.String(description="Echoes the input string")


class TestMutation(graphene.ObjectType):
    output = graphene.String(description="Echoes the input string")


# --- inputs: the request fields of each RPC ------------------------------------------------------------------


class MlflowGetExperimentInput(graphene.InputObjectType):
    experiment_id = graphene.String()


class MlflowGetRunInput(graphene.InputObjectType):
    run_id = graphene.String()
    run_uuid = graphene.String()


class MlflowGetMetricHistoryBulkIntervalInput(graphene.InputObjectType):
    run_ids = graphene.List(graphene.String)
    metric_key = graphene.String()
    start_step = graphene.Int()
    end_step = graphene.Int()
    max_results = graphene.Int()


class MlflowListArtifactsInput(graphene.InputObjectType):
    run_id = graphene.String()
    run_uuid = graphene.String()
    path = graphene.String()
    page_token = graphene.String()


class MlflowSearchModelVersionsInput(graphene.InputObjectType):
    filter = graphene.String()
    max_results = LongString()
    order_by = graphene.List(graphene.String)
    page_token = graphene.String()


class MlflowSearchRunsInput(graphene.InputObjectType):
    experiment_ids = graphene.List(graphene.String)
    filter = graphene.String()
    run_view_type = graphene.Field(MlflowViewType)
    max_results = graphene.Int()
    order_by = graphene.List(graphene.String)
    page_token = graphene.String()


class MlflowSearchDatasetsInput(graphene.InputObjectType):
    experiment_ids = graphene.List(graphene.String)


# --- root fields ------------------------------------------------------------------------------------------------


def rpc_field(response_type, input_type, rpc_name: str, runs: str | None = None) -> graphene.Field:
    """A root field answered by one RPC. `runs`: the answer's key holding runs (one run, or a list)."""

    @mlflow_errors
    def resolve(root, info, input=None):
        answer = call_rpc(info.context, rpc_name, request_fields(input))
        if runs and runs in answer:
            found = answer[runs]
            batch = RunBatch(info.context, found if isinstance(found, list) else [found])
            answer = {**answer, runs: batch.nodes if isinstance(found, list) else batch.nodes[0]}
        return answer

    return graphene.Field(response_type, input=input_type(), resolver=resolve)


def search_runs_field() -> graphene.Field:
    return rpc_field(MlflowSearchRunsResponse, MlflowSearchRunsInput, "SearchRuns", runs="runs")


def echo(root, info, input_string=None):
    return {"output": input_string}


class Query(graphene.ObjectType):
    mlflow_get_experiment = rpc_field(MlflowGetExperimentResponse, MlflowGetExperimentInput, "GetExperiment")
    mlflow_get_metric_history_bulk_interval = rpc_field(
        MlflowGetMetricHistoryBulkIntervalResponse, MlflowGetMetricHistoryBulkIntervalInput, "GetMetricHistoryBulkInterval"
    )
    mlflow_get_run = rpc_field(MlflowGetRunResponse, MlflowGetRunInput, "GetRun", runs="run")
    mlflow_list_artifacts = rpc_field(MlflowListArtifactsResponse, MlflowListArtifactsInput, "ListRunArtifacts")
    mlflow_search_model_versions = rpc_field(
        MlflowSearchModelVersionsResponse, MlflowSearchModelVersionsInput, "SearchModelVersions"
    )
    mlflow_search_runs = search_runs_field()  # the UI's runs table sends `query SearchRuns`
    test = graphene.Field(Test, input_string=graphene.String(), description="Simple echoing field", resolver=echo)


class Mutation(graphene.ObjectType):
    mlflow_search_datasets = rpc_field(MlflowSearchDatasetsResponse, MlflowSearchDatasetsInput, "SearchDatasets")
    mlflow_search_runs = search_runs_field()
    test_mutation = graphene.Field(TestMutation, input_string=graphene.String(), description="Simple echoing field",
                                   resolver=echo)


# The UI tags its operations with @component(name: ...); a query naming an undeclared directive is invalid.
COMPONENT_DIRECTIVE = GraphQLDirective(
    name="component",
    locations=[DirectiveLocation.QUERY, DirectiveLocation.MUTATION],
    args={"name": GraphQLArgument(GraphQLNonNull(GraphQLString))},
)

SCHEMA = graphene.Schema(query=Query, mutation=Mutation, directives=[*specified_directives, COMPONENT_DIRECTIVE])
