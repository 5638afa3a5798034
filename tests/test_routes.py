"""Every served route has a declared permission rule; the route table is consistent."""

from django.urls import URLPattern, URLResolver, get_resolver

from mlflow_sh.routing import RpcView
from mlflow_sh.rules import Rule
from mlflow_sh.urls import ALL_RPCS, OTHER_ROUTE_RULES


def served_routes(resolver=None, prefix=""):
    """(route, view) for every pattern Django serves, resolvers included as one route."""
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield route, pattern
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def test_every_served_route_has_a_rule():
    missing = []
    for route, view in served_routes():
        view_class = getattr(view, "view_class", None)
        if view_class is not None and issubclass(view_class, RpcView):
            missing += [f"{method} {route}" for method, rpc in view_class.rpcs.items() if not isinstance(rpc.rule, Rule)]
        elif route not in OTHER_ROUTE_RULES:
            missing.append(route)
    assert missing == []


def test_rpc_names_and_paths_are_unique_per_method():
    seen = set()
    for rpc in ALL_RPCS:
        for prefix in rpc.prefixes:
            key = (rpc.method, f"{prefix}/{rpc.path}")
            assert key not in seen, key
            seen.add(key)


def test_every_rpc_is_served_at_each_of_its_prefixes(client, db):
    for rpc in ALL_RPCS:
        for prefix in rpc.prefixes:
            url = "/" + "/".join(part for part in (prefix, rpc.path) if part)
            url = url.replace("<path:artifact_path>", "1/x").replace("<str:model_id>", "m-1").replace("<path:tag_key>", "k")
            response = client.generic("OPTIONS", url)
            assert response.status_code != 404, f"{rpc.method} {url}"


def test_only_searches_and_gets_run_outside_a_transaction():
    # An RPC skips its transaction when its rule only reads; a write declared with a read rule would lose its
    # all-or-nothing guarantee, so the read-only RPCs that are not GETs are named here.
    read_only_posts = {rpc.name for rpc in ALL_RPCS if rpc.method != "GET" and rpc.atomic and not rpc.transactional}
    assert read_only_posts == {"SearchExperiments", "SearchRuns", "SearchDatasets", "SearchLoggedModels",
                               "SearchRegisteredModels", "GetLatestVersions", "SearchModelVersions"}
    assert all(rpc.transactional for rpc in ALL_RPCS if rpc.atomic and rpc.method in {"PATCH", "DELETE", "PUT"})
