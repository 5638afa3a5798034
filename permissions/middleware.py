"""The project view: /<project path>/tracking/<any route> is that route, in the context of one GitLab project."""

from django.urls import Resolver404, resolve

UNKNOWN_API_ROUTE = "unknown-api-path"  # the name of the catch-all that answers 404 for unknown API paths

# First segments of the server's own routes: a split is only valid where one of them (or nothing) follows.
ROUTE_HEADS = ("api", "ajax-api", "get-artifact", "model-versions", "graphql", "static-files", "health", "version",
               "auth", "admin", "favicon.ico", "")


def split_project_view(path: str) -> tuple[str | None, str]:
    """(project path, dispatched path). When `tracking` occurs several times, the longest project path whose
    rest is a route this server serves wins (an artifact path may itself contain "tracking/api/...")."""
    segments = path.lstrip("/").split("/")
    candidates = [
        ("/".join(segments[:index]), "/" + "/".join(segments[index + 1:]))
        for index in range(len(segments) - 1, 0, -1)
        if segments[index] == "tracking" and (index + 1 == len(segments) or segments[index + 1] in ROUTE_HEADS)
    ]
    for project, dispatched in candidates:
        if _served(dispatched):
            return project, dispatched
    return candidates[0] if candidates else (None, path)


def _served(path: str) -> bool:
    try:
        return resolve(path).url_name != UNKNOWN_API_ROUTE
    except Resolver404:
        return False


class ProjectViewMiddleware:
    """Sets request.project_path and dispatches the rest of the path as if it had been requested alone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        project_path, dispatched = split_project_view(request.path_info)
        request.project_path = project_path
        if project_path is not None:
            request.project_prefix = f"/{project_path}/tracking"
            request.path_info = dispatched
            request.path = f"{request.META.get('SCRIPT_NAME', '').rstrip('/')}{dispatched}"
        else:
            request.project_prefix = ""
        return self.get_response(request)
