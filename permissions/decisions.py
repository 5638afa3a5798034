"""Decisions: may this caller do this to the resources this request names? Fail closed, answer as MLflow's
auth app does (401 and 403 with text bodies), and scope searches to the projects the caller may read."""

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect

from mlflow_sh.errors import HttpAnswer
from mlflow_sh.rules import Check, Rule
from permissions import upstream
from permissions.resources import NoResource, current_name, name_suffix, owning_projects, protected_tag
from registry.models import RegisteredModel
from tracking.models import Experiment
from permissions.upstream import DEVELOPER, GUEST, Credential, Unauthenticated

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MINIMUM_ROLE = {"read": GUEST, "create": DEVELOPER, "update": DEVELOPER, "delete": DEVELOPER}
NOT_AUTHENTICATED = (
    "You are not authenticated. Please use the Authorization header for bearer auth, if you are using the MLflow "
    "client set MLFLOW_TRACKING_TOKEN."
)


def forbidden() -> HttpAnswer:
    return HttpAnswer(HttpResponse("Permission denied.", status=403, content_type="text/plain"))


def not_authenticated(request) -> HttpAnswer:
    """API clients get 401 and how to authenticate; browsers the login page, or a redirect to it."""
    if "mlflow" in request.META.get("HTTP_USER_AGENT", "").lower():
        response = HttpResponse(NOT_AUTHENTICATED, status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="mlflow"'
        return HttpAnswer(response)
    script_name = request.META.get("SCRIPT_NAME", "").rstrip("/")
    login = f"{script_name}{request.project_prefix}/auth/login"
    if request.method == "GET" and "text/html" in request.META.get("HTTP_ACCEPT", ""):  # a page: come back to it
        query = request.META.get("QUERY_STRING", "")
        asked = f"{script_name}{request.project_prefix}{request.path_info}" + (f"?{query}" if query else "")
        login = f"{login}?{urlencode({'next': asked})}"
    if settings.LOGIN_AUTO_REDIRECT:
        return HttpAnswer(HttpResponseRedirect(login))
    page = (f"<!doctype html><title>Login required</title><h1>Login required</h1>"
            f"<p>You are not authenticated. <a href=\"{login}\">Log in</a> to use MLflow.</p>")
    response = HttpResponse(page, status=401, content_type="text/html; charset=utf-8")
    response["WWW-Authenticate"] = 'Bearer realm="mlflow"'
    return HttpAnswer(response)


def credential_of(request) -> Credential | None:
    """Bearer token, else (SharingHub) its session cookie or default-token mode, else (GitLab) the login."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return Credential("bearer", header[7:].strip())
    if settings.PERMISSION_MODE == "sharinghub":
        cookie = request.COOKIES.get(settings.SHARINGHUB_SESSION_COOKIE)
        if cookie:
            refuse_cross_site_write(request)
            return Credential("cookie", cookie)
        if settings.SHARINGHUB_AUTH_DEFAULT_TOKEN:
            return Credential("default")
        return None
    token = request.session.get("gitlab_access_token") if hasattr(request, "session") else None
    if not token:
        return None
    refuse_cross_site_write(request)
    return Credential("bearer", token)


def refuse_cross_site_write(request) -> None:
    """A session cookie rides along on any request a browser sends, whichever page made it: a write that another
    site's page made (the browser says so in Sec-Fetch-Site) is refused. Uploads take any body, so the JSON rule of
    the other writes does not cover them, nor a session cookie set SameSite=None."""
    if request.method not in SAFE_METHODS and request.META.get("HTTP_SEC_FETCH_SITE") == "cross-site":
        raise forbidden()


def forget_login(request) -> None:
    """A revoked or expired GitLab login is dropped, so it is not asked about again on every request."""
    session = getattr(request, "session", None)
    if session is not None and session.get("gitlab_access_token"):
        for key in ("gitlab_access_token", "gitlab_user"):
            session.pop(key, None)


class Caller:
    """One request's caller: authenticated once, asked about each project once."""

    def __init__(self, request):
        self.request = request
        self.credential = credential_of(request)
        if self.credential is None:
            raise not_authenticated(request)
        try:
            upstream.authenticated(self.credential)
        except Unauthenticated:
            forget_login(request)
            raise not_authenticated(request) from None

    def access(self, project_path: str) -> upstream.ProjectAccess:
        try:
            return upstream.project_access(self.credential, project_path)
        except Unauthenticated:
            forget_login(self.request)
            raise not_authenticated(self.request) from None

    def may(self, action: str, project_path: str | None) -> bool:
        view = self.request.project_path
        if not project_path or view is not None and project_path != view:
            return False  # untagged, or another project than the view's: invisible even to its members
        return self.access(project_path).role >= MINIMUM_ROLE[action]


def authorize(request, rule: Rule, data: dict) -> None:
    """Raises 401/403 (HttpAnswer) unless the rule allows the request; sets request.readable_projects."""
    request.readable_projects = _view_scope(request)
    if rule.public or settings.PERMISSION_MODE == "open":
        return
    if "django-staff" in rule.guards:
        return  # the admin checks Django's own staff accounts
    caller = Caller(request)
    for check in rule.checks:
        _check(caller, check, data)
    for name in rule.guards:
        _guard(caller, name, data)


def _view_scope(request) -> list[str] | None:
    """Open mode: a project view shows its project only; the global view everything."""
    return [request.project_path] if request.project_path is not None else None


def _check(caller: Caller, check: Check, data: dict) -> None:
    if check.resource == "server":  # a search: its results are limited to what the caller may read
        caller.request.readable_projects = readable_projects(caller)
        return
    if check.resource == "project":
        _check_create(caller, check, data)
        return
    try:
        projects = owning_projects(check.resource, check.field, data)
    except NoResource:
        raise forbidden() from None
    if projects is None:
        return  # nothing by that name: the handler answers RESOURCE_DOES_NOT_EXIST, as MLflow does
    if not all(caller.may(check.action, project) for project in projects):
        raise forbidden()


def _check_create(caller: Caller, check: Check, data: dict) -> None:
    """Experiments and registered models are created in a project view only, named "<name> (<project id>)"."""
    view = caller.request.project_path
    if view is None:
        raise forbidden()
    access = caller.access(view)
    if access.role < MINIMUM_ROLE["create"] or name_suffix(data.get(check.field, "")) != str(access.project_id):
        raise forbidden()


def _guard(caller: Caller, name: str, data: dict) -> None:
    kind, _, field = name.partition(":")
    if kind == "project_tag" and protected_tag(data.get(field, "")):
        raise forbidden()
    if kind == "default_location" and data.get(field):
        raise forbidden()
    if kind == "suffix" and data.get(field):
        current = current_name(data)
        if current is not None and name_suffix(data[field]) != name_suffix(current):
            raise forbidden()


def readable_projects(caller: Caller) -> list[str]:
    """The projects whose entities the caller may see: the view's own, or (global view) every project that
    owns something here and that SharingHub says the caller may read; asked once per project, then cached."""
    view = caller.request.project_path
    if view is not None:
        return [view] if caller.may("read", view) else []
    return [project for project in known_projects() if caller.may("read", project)]


def known_projects() -> list[str]:
    tagged = Experiment.objects.exclude(project=None).values_list("project", flat=True).distinct()
    models = RegisteredModel.objects.exclude(project=None).values_list("project", flat=True).distinct()
    return sorted(set(tagged.union(models)))
