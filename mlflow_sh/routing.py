"""The route table: each MLflow RPC declared once; URLs, request decoding and permission rules derive from it."""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.urls import URLPattern, URLResolver, path
from django.urls.resolvers import RoutePattern

from mlflow_sh import wire
from mlflow_sh.errors import MlflowError, error_answer
from mlflow_sh.rules import Rule
from permissions.decisions import authorize

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CONTENT_TYPE_CHECKED = {"POST", "PUT"}  # MLflow checks Content-Type on these only


@dataclass(frozen=True)
class Rpc:
    name: str  # MLflow's RPC name, for logs and tests
    method: str
    path: str  # below the prefix, e.g. "mlflow/runs/get"
    handler: Callable[..., dict]
    rule: Rule  # no default: a route without a rule does not exist
    fields: dict | None = None
    prefixes: tuple[str, ...] = ("api/2.0", "ajax-api/2.0")
    max_body_bytes: int | None = None
    body_too_large: str = ""  # MLflow's message for a body over max_body_bytes
    raw_body: bool = False  # the body is a file for the handler to stream: fields come from the query string
    atomic: bool = True  # False: the handler opens the transaction it needs itself (a long transfer needs none)

    @property
    def transactional(self) -> bool:
        """Runs in a transaction of its own: an RPC that may write (its rule asks more than reading).

        Reads skip BEGIN/COMMIT, two round trips of a small call; a read of several statements loses nothing,
        since READ COMMITTED gives each statement its own snapshot inside a transaction too."""
        return self.atomic and any(check.action != "read" for check in self.rule.checks)


class RpcView:
    """One URL's RPCs by method: decodes the fields by MLflow's rules, checks the rule, calls the handler.

    A plain Django view rather than DRF's APIView: its Request wrapper, content negotiation, authentication,
    permission and throttle classes have nothing to do for an API with one renderer and its rules in this table,
    and cost a small call a tenth of its time. Like APIView (without SessionAuthentication) it asks no CSRF token:
    API clients send bearer tokens, and a write authenticated by a browser's session cookie is refused when the
    browser says another site's page made it (permissions.decisions.refuse_cross_site_write)."""

    csrf_exempt = True

    def __init__(self, rpcs: dict[str, Rpc]):
        self.rpcs = dict(rpcs)
        if "GET" in rpcs:  # as Flask: HEAD is GET without the body (the server drops it)
            self.rpcs.setdefault("HEAD", rpcs["GET"])
        self.allow = ", ".join([*self.rpcs, "OPTIONS"])

    def __call__(self, request, **path_fields) -> HttpResponseBase:
        try:
            return self._handle(request, path_fields)
        except Exception as exc:  # every failure leaves as MLflow JSON (or the HttpAnswer it carries)
            return error_answer(exc, request)

    def _handle(self, request, path_fields: dict) -> HttpResponseBase:
        rpc = self.rpcs.get(request.method)
        if rpc is None:
            if request.method == "OPTIONS":  # as Flask answers it: the methods, no body
                return HttpResponse(headers={"Allow": self.allow})
            raise MlflowError(f'Method "{request.method}" not allowed.', "BAD_REQUEST", status=405)
        data = self.decode(rpc, request)
        data.update(path_fields)
        authorize(request, rpc.rule, data)  # 401/403 before the handler runs; searches get their scope
        if rpc.transactional:
            with transaction.atomic():  # one request, one transaction: an error leaves nothing written
                result = rpc.handler(request, data)
        else:
            result = rpc.handler(request, data)
        return result if isinstance(result, HttpResponseBase) else wire.json_response(result)

    @staticmethod
    def decode(rpc: Rpc, request) -> dict:
        fields = rpc.fields or {}
        if request.method not in BODY_METHODS or rpc.raw_body:
            return wire.parse_query(fields, request.GET)
        if request.method in CONTENT_TYPE_CHECKED:
            wire.check_content_type(request.content_type if request.META.get("CONTENT_TYPE") else None)
        raw = request.body
        if rpc.max_body_bytes is not None and len(raw) > rpc.max_body_bytes:
            raise MlflowError.invalid(rpc.body_too_large.format(size=len(raw), limit=rpc.max_body_bytes))
        return wire.parse_fields(fields, wire.decode_json_body(raw))


class RpcResolver(URLResolver):
    """The RPC routes, each path without parameters found by a dict lookup.

    Django matches a URL conf's patterns one by one: with some 130 RPC paths, that was a tenth of a small call's
    time. A path with parameters (artifacts, logged models) is matched in turn, as before; the prefix-less
    RoutePattern("") keeps every route's name as declared (ResolverMatch.route)."""

    def __init__(self, patterns: list[URLPattern]):
        super().__init__(RoutePattern(""), patterns)
        self._by_path = {str(pattern.pattern): pattern for pattern in patterns if not pattern.pattern.converters}

    def resolve(self, path):
        pattern = self._by_path.get(path)
        return super().resolve(path) if pattern is None else pattern.resolve(path)


def rpc_urlpatterns(rpcs: list[Rpc]) -> list:
    by_path: dict[str, dict[str, Rpc]] = defaultdict(dict)  # one path may carry several methods
    for rpc in rpcs:
        for prefix in rpc.prefixes:
            route = f"{prefix}/{rpc.path}" if prefix else rpc.path
            if rpc.method in by_path[route]:
                raise ValueError(f"{rpc.method} {route} is declared twice")
            by_path[route][rpc.method] = rpc
    return [RpcResolver([path(route, _view(by_method)) for route, by_method in by_path.items()])]


def _view(rpcs_by_method: dict[str, Rpc]):
    # Each RPC opens its own transaction when it needs one (Rpc.transactional), not ATOMIC_REQUESTS.
    return transaction.non_atomic_requests(RpcView(rpcs_by_method))
