"""Browser login and logout (/auth/...), project-aware: SharingHub logs users in itself; GitLab mode runs OIDC."""

import html
import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme

from permissions import upstream


def _external_base(request) -> str:
    """This server's public URL (scheme and host as the ingress forwards them, plus X-Script-Name)."""
    return request.build_absolute_uri(f"{request.META.get('SCRIPT_NAME', '').rstrip('/')}/")


def _view_url(request, project: str | None) -> str:
    base = _external_base(request)
    return f"{base}{project}/tracking/" if project else base


def _next_page(request) -> str | None:
    """`next`: the page the browser asked for before logging in, if it is one of this server's (no open redirect)."""
    target = request.GET.get("next", "")
    script_name = request.META.get("SCRIPT_NAME", "").rstrip("/")
    if target.startswith(f"{script_name}/") and url_has_allowed_host_and_scheme(target, allowed_hosts=None):
        return target
    return None


def auth_page(request):
    user = request.session.get("gitlab_user") or {}
    who = f"<p>Logged in as {html.escape(user.get('name', ''))} ({html.escape(user.get('email', ''))})</p>" if user else ""
    page = (
        "<!doctype html><title>MLflow SharingHub</title><h1>MLflow SharingHub</h1>"
        f"<p>Permission mode: {html.escape(settings.PERMISSION_MODE)}</p>{who}"
        '<p><a href="login">Log in</a> · <a href="logout">Log out</a></p>'
    )
    return HttpResponse(page)


def login(request):
    project = request.GET.get("project") or request.project_path
    next_page = _next_page(request)
    if settings.PERMISSION_MODE == "sharinghub":  # SharingHub sends the browser back to redirect_uri
        back = request.build_absolute_uri(next_page) if next_page else _view_url(request, project)
        query = urlencode({"redirect_uri": back})
        return HttpResponseRedirect(f"{settings.SHARINGHUB_URL}/api/auth/login?{query}")
    if settings.PERMISSION_MODE == "gitlab":
        state = secrets.token_urlsafe(24)
        request.session["oidc"] = {"state": state, "project": project, "next": next_page}
        query = urlencode({
            "client_id": settings.GITLAB_OAUTH_CLIENT_ID, "response_type": "code", "state": state,
            "redirect_uri": f"{_external_base(request)}auth/authorize", "scope": "openid email read_user profile api",
        })
        return HttpResponseRedirect(f"{settings.GITLAB_URL}/oauth/authorize?{query}")
    return HttpResponse("Open mode: no SHARINGHUB_URL or GITLAB_URL is set, there is nothing to log in to.",
                        status=404, content_type="text/plain")


def authorize(request):
    """GitLab's OIDC callback: the code becomes an access token kept in the server-side session."""
    pending = request.session.pop("oidc", None)
    if settings.PERMISSION_MODE != "gitlab" or not pending or request.GET.get("state") != pending["state"]:
        return HttpResponseBadRequest("Login expired or forged: start again from the login page.")
    try:
        response = upstream.http().post(f"{settings.GITLAB_URL}/oauth/token", data={
            "client_id": settings.GITLAB_OAUTH_CLIENT_ID, "client_secret": settings.GITLAB_OAUTH_CLIENT_SECRET,
            "code": request.GET.get("code", ""), "grant_type": "authorization_code",
            "redirect_uri": f"{_external_base(request)}auth/authorize",
        }, timeout=(settings.PERMISSION_CONNECT_TIMEOUT, settings.PERMISSION_READ_TIMEOUT))
    except upstream.requests.RequestException:
        return HttpResponse("GitLab is unavailable: try again shortly.", status=503, content_type="text/plain")
    if response.status_code != 200 or "access_token" not in response.json():
        return HttpResponseBadRequest("GitLab refused the login.")
    tokens = response.json()
    request.session.cycle_key()
    request.session["gitlab_access_token"] = tokens["access_token"]
    request.session["gitlab_user"] = _userinfo(tokens["access_token"])
    next_page = pending.get("next")
    back = request.build_absolute_uri(next_page) if next_page else _view_url(request, pending.get("project"))
    return HttpResponseRedirect(back)


def _userinfo(token: str) -> dict:
    try:
        response = upstream.http().get(f"{settings.GITLAB_URL}/oauth/userinfo", headers={"Authorization": f"Bearer {token}"},
                                       timeout=(settings.PERMISSION_CONNECT_TIMEOUT, settings.PERMISSION_READ_TIMEOUT))
        return {k: response.json().get(k, "") for k in ("name", "email")} if response.ok else {}
    except (upstream.requests.RequestException, ValueError):
        return {}


def logout(request):
    for key in ("gitlab_access_token", "gitlab_user", "oidc"):
        request.session.pop(key, None)
    if settings.LOGIN_AUTO_REDIRECT:
        return HttpResponseRedirect(f"{request.META.get('SCRIPT_NAME', '').rstrip('/')}{request.project_prefix}/auth/")
    return HttpResponseRedirect(_view_url(request, request.project_path))
