"""URLs: every RPC of the route table at its prefixes, plus the few plain routes; unknown API paths answer JSON."""

from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse, JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from mlflow_sh.routing import rpc_urlpatterns
from permissions import views as auth_views
from mlflow_sh.rules import PUBLIC, STAFF, Rule
from registry.routes import RPCS as REGISTRY_RPCS
from tracking.routes import RPCS as TRACKING_RPCS

ALL_RPCS = [*TRACKING_RPCS, *REGISTRY_RPCS]


def health(request):
    return HttpResponse("OK", content_type="text/plain")


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
    "admin/": STAFF,
    "auth/": PUBLIC,
    "auth/login": PUBLIC,
    "auth/logout": PUBLIC,
    "auth/authorize": PUBLIC,
    "^(?:api|ajax-api)/": PUBLIC,  # answers 404 for any API path the table does not serve
}

urlpatterns = [
    path("health", health),
    path("version", version),
    path("admin/", admin.site.urls),
    path("auth/", auth_views.auth_page),
    path("auth/login", auth_views.login),
    path("auth/logout", auth_views.logout),
    path("auth/authorize", auth_views.authorize),
    *rpc_urlpatterns(ALL_RPCS),
    re_path(r"^(?:api|ajax-api)/", endpoint_not_found, name="unknown-api-path"),
]


def served_rpc_names() -> set[str]:
    return {rpc.name for rpc in ALL_RPCS}
