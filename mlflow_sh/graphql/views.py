"""GET and POST /graphql: decode the request, check the query's size, run it, answer as MLflow's server does."""

import json

from django.conf import settings
from django.db import transaction
from graphql import GraphQLError, execute_sync, parse, validate
from rest_framework.response import Response
from rest_framework.views import APIView

from mlflow_sh import wire
from mlflow_sh.errors import MlflowError
from mlflow_sh.graphql import limits
from mlflow_sh.graphql.schema import SCHEMA

# The UI's largest query is ~200 tokens; parsing stops well before a huge document costs real time.
MAX_QUERY_TOKENS = 10_000


class GraphQLView(APIView):
    """Authorization happens per field, each under the rule of the RPC that answers it (schema.py).

    A DRF view without authentication classes, so, like the RPC views, it asks no CSRF token (the UI sends none):
    a POST must be application/json, which a cross-site form cannot send, and every field is a read whose answer a
    cross-site page cannot see.
    """

    def get(self, request):
        if "query" in request.query_params:  # GraphQL over HTTP, as tools send it
            params = request.query_params
            variables = params.get("variables")
            try:
                variables = json.loads(variables) if variables else None
            except ValueError:
                raise MlflowError.invalid("The 'variables' parameter must be a JSON object.") from None
            return self.answer(request, {"query": params["query"], "variables": variables,
                                         "operationName": params.get("operationName")})
        return self.answer(request, wire.decode_json_body(request.body))  # MLflow reads a JSON body on GET too

    def post(self, request):
        wire.check_content_type(request.content_type if request.META.get("CONTENT_TYPE") else None)
        return self.answer(request, wire.decode_json_body(request.body))

    def answer(self, request, body: dict) -> Response:
        query, variables, operation_name = body.get("query"), body.get("variables"), body.get("operationName")
        if not isinstance(query, str) or not query.strip():
            raise wire.missing_value("query")
        if variables is not None and not isinstance(variables, dict):
            raise MlflowError.invalid("The 'variables' field must be a JSON object.")
        if operation_name is not None and not isinstance(operation_name, str):
            raise MlflowError.invalid("The 'operationName' field must be a string.")
        data, errors = run_query(request, query, variables, operation_name)
        # MLflow's shape: errors as a list of messages, null when there are none; 200 either way.
        return Response({"data": data, "errors": [error.message for error in errors] or None})


def run_query(request, query: str, variables: dict | None, operation_name: str | None):
    """(data, errors): a query that cannot run gets no data and the reasons, never an exception."""
    try:
        document = parse(query, max_lexical_tokens=MAX_QUERY_TOKENS)
        limits.check(document, max_root_fields=settings.MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS,
                     max_aliases=settings.MLFLOW_SERVER_GRAPHQL_MAX_ALIASES)
    except GraphQLError as err:
        return None, [err]
    except limits.LimitExceeded as exceeded:
        return None, [GraphQLError(str(exceeded))]
    errors = validate(SCHEMA.graphql_schema, document)
    if errors:
        return None, errors
    result = execute_sync(SCHEMA.graphql_schema, document, variable_values=variables,
                          operation_name=operation_name, context_value=request)
    return result.data, result.errors or []


# Every field is a read (as RpcView runs read RPCs, no transaction): a database error in one field then cannot
# abort a transaction the other fields still read through.
graphql_view = transaction.non_atomic_requests(GraphQLView.as_view())
