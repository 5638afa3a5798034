"""The project view: /<project path>/tracking/<any route> is that route, in the context of one GitLab project."""

# First segments of the server's own routes: a split is only valid where one of them (or nothing) follows.
ROUTE_HEADS = ("api", "ajax-api", "get-artifact", "model-versions", "graphql", "static-files", "health", "version",
               "auth", "admin", "favicon.ico", "")


def split_project_view(path: str) -> tuple[str | None, str]:
    """(project path, dispatched path); the longest project path wins when `tracking` occurs several times."""
    segments = path.lstrip("/").split("/")
    for index in range(len(segments) - 1, 0, -1):
        if segments[index] != "tracking":
            continue
        remainder = segments[index + 1:]
        if not remainder or remainder[0] in ROUTE_HEADS:
            return "/".join(segments[:index]), "/" + "/".join(remainder)
    return None, path


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
