"""URLs: every RPC of the route table at its prefixes, plus the few plain routes; unknown API paths answer JSON."""

from django.conf import settings
from django.contrib import admin
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from mlflow_sh.graphql.views import graphql_view
from mlflow_sh.routing import rpc_urlpatterns
from permissions import views as auth_views
from mlflow_sh.rules import AUTHENTICATED, PUBLIC, STAFF, Rule
from permissions.admin import clear_permission_cache
from registry.routes import RPCS as REGISTRY_RPCS
from tracking.routes import RPCS as TRACKING_RPCS
from mlflow_sh.webui import views as ui_views

ALL_RPCS = [*TRACKING_RPCS, *REGISTRY_RPCS]


# Plain answers open no transaction (ATOMIC_REQUESTS would add BEGIN/COMMIT to every probe).
@transaction.non_atomic_requests
def health(request):
    return HttpResponse("OK", content_type="text/plain")


@transaction.non_atomic_requests
def version(request):
    return HttpResponse(settings.MLFLOW_COMPATIBLE_VERSION, content_type="text/plain")


@csrf_exempt  # a POST to an unknown API path is a 404, not a CSRF failure
def endpoint_not_found(request, exception=None):
    # Flask answers HTML here; JSON carries the same 404 and a code the client understands.
    body = {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No endpoint {request.method} {request.path} on this server."}
    return JsonResponse(body, status=404)


def server_error(request):
    return JsonResponse({"error_code": "INTERNAL_ERROR", "message": "An internal error occurred."}, status=500)


handler404 = endpoint_not_found
handler500 = server_error

# Routes outside the RPC table, each with its declared rule (the admin has Django's own login).
OTHER_ROUTE_RULES: dict[str, Rule] = {
    "health": PUBLIC,
    "version": PUBLIC,
    "admin/permission-cache/": STAFF,
    "admin/": STAFF,
    "auth/": PUBLIC,
    "auth/login": PUBLIC,
    "auth/logout": PUBLIC,
    "auth/authorize": PUBLIC,
    # Open as a route: each field is authorized under the rule of the RPC that answers it (graphql/schema.py).
    "graphql": PUBLIC,
    "^(?:api|ajax-api)/": PUBLIC,  # answers 404 for any API path the table does not serve
    "": AUTHENTICATED,  # the web UI's page (a login first, for browsers, when LOGIN_AUTO_REDIRECT is on)
    "static-files/<path:path>": PUBLIC,  # the UI bundle's files that it lacks (whitenoise serves the others)
}

urlpatterns = [
    path("health", health),
    path("version", version),
    path("admin/permission-cache/", admin.site.admin_view(clear_permission_cache), name="clear-permission-cache"),
    path("admin/", admin.site.urls),
    path("auth/", auth_views.auth_page),
    path("auth/login", auth_views.login),
    path("auth/logout", auth_views.logout),
    path("auth/authorize", auth_views.authorize),
    path("graphql", graphql_view),
    *rpc_urlpatterns(ALL_RPCS),
    re_path(r"^(?:api|ajax-api)/", endpoint_not_found, name="unknown-api-path"),
    path("", ui_views.index),
    path("static-files/<path:path>", ui_views.asset_not_found),
]


def served_rpc_names() -> set[str]:
    return {rpc.name for rpc in ALL_RPCS}
