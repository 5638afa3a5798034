"""Every served route has a declared permission rule; the route table is consistent."""

import re

from django.urls import URLPattern, URLResolver, get_resolver, resolve

from mlflow_sh.routing import RpcResolver, RpcView
from mlflow_sh.rules import Rule
from mlflow_sh.urls import ALL_RPCS, OTHER_ROUTE_RULES


def served_routes(resolver=None, prefix=""):
    """(route, view) for every pattern Django serves, other resolvers (the admin) included as one route."""
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, RpcResolver):
            yield from served_routes(pattern, route)
        elif isinstance(pattern, URLResolver):
            yield route, pattern
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def test_every_served_route_has_a_rule():
    missing = []
    for route, view in served_routes():
        if isinstance(view, RpcView):
            missing += [f"{method} {route}" for method, rpc in view.rpcs.items() if not isinstance(rpc.rule, Rule)]
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


def test_the_resolver_finds_every_rpc_at_its_declared_route():
    for rpc in ALL_RPCS:
        for prefix in rpc.prefixes:
            route = f"{prefix}/{rpc.path}" if prefix else rpc.path
            url = "/" + route.replace("<path:artifact_path>", "1/x.txt").replace("<str:model_id>", "m-1").replace(
                "<path:tag_key>", "a/b")
            match = resolve(url)
            assert match.route == route
            assert match.func.rpcs[rpc.method] == rpc
            if "<" in route:
                assert set(match.kwargs) == {name.split(":")[1] for name in re.findall(r"<([^>]+)>", route)}
    assert resolve("/api/2.0/mlflow/logged-models/m-1/tags/a/b").kwargs == {"model_id": "m-1", "tag_key": "a/b"}


def test_an_unknown_api_path_and_a_missing_method_answer_as_mlflow(client, db):
    response = client.get("/api/2.0/mlflow/runs/no-such-rpc")
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    response = client.get("/api/2.0/mlflow/runs/create")
    assert response.status_code == 405
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert response.json()["message"] == 'Method "GET" not allowed.'
    response = client.options("/api/2.0/mlflow/experiments/get")
    assert (response.status_code, response.content, response["Allow"]) == (200, b"", "GET, HEAD, OPTIONS")
    assert client.options("/api/2.0/mlflow/runs/create")["Allow"] == "POST, OPTIONS"
    assert client.head("/api/2.0/mlflow/experiments/get", {"experiment_id": "0"}).status_code == 200
    assert client.head("/api/2.0/mlflow/runs/create").status_code == 405
