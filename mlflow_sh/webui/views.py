"""The UI's page: MLflow's index.html with our SharingHub script, after the caller is authenticated."""

import html
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.utils.html import json_script
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_safe

from mlflow_sh.errors import HttpAnswer, MlflowError
from mlflow_sh.rules import AUTHENTICATED
from permissions.decisions import authorize
from mlflow_sh.webui.assets import installed_version

SCRIPT = Path(__file__).with_name("sharinghub.js").read_text()  # read once: it changes with a release only


def missing_bundle_page() -> HttpResponse:
    # The folder itself is in the start log, not here: this page is public under /static-files/.
    page = (
        "<!doctype html><title>MLflow UI not installed</title><h1>The MLflow web UI is not installed</h1>"
        "<p>The folder <code>MLFLOW_UI_DIR</code> names holds no MLflow UI bundle. Put it there with</p>"
        f"<pre>python manage.py fetch_ui</pre><p>(MLflow {html.escape(settings.MLFLOW_UI_VERSION)}'s, from its "
        'wheel), then restart the server. The API works without it: <a href="version">version</a>.</p>'
    )
    return HttpResponse(page, status=404, content_type="text/html; charset=utf-8")


def integration_config(request) -> dict:
    """What the injected script shows: the read-only tag of the global view, the way back to the project in
    SharingHub (or GitLab) and to the global view, and (GitLab mode only, as the original) a logout link."""
    mode, project = settings.PERMISSION_MODE, request.project_path
    script_name = request.META.get("SCRIPT_NAME", "").rstrip("/")
    config = {"readOnly": mode != "open" and project is None}  # nothing is created outside a project view
    if project is not None:
        config["project"] = project
        config["globalViewUrl"] = f"{script_name}/"
        if mode == "sharinghub":  # SharingHub's UI shows a project as the STAC item of its category
            config["projectUrl"] = (f"{settings.SHARINGHUB_URL}/ui/#/api/stac/collections/"
                                    f"{settings.SHARINGHUB_STAC_COLLECTION}/items/{project}")
        elif mode == "gitlab":
            config["projectUrl"] = f"{settings.GITLAB_URL}/{project}"
    if mode == "gitlab":  # SharingHub mode: the session is SharingHub's, logged out there
        config["logoutUrl"] = f"{script_name}{request.project_prefix}/auth/logout"
    return config


@transaction.non_atomic_requests  # reads no rows: no BEGIN/COMMIT
@xframe_options_sameorigin  # SharingHub's UI, on the same host, shows this page in a frame
@require_safe  # GET and HEAD; anything else is 405, as MLflow's Flask route
def index(request):
    if request.project_path is not None and not request.META.get("PATH_INFO", "").endswith("/"):
        # /<project>/tracking without the slash: the bundle's relative links would miss the project view
        query = f"?{request.META['QUERY_STRING']}" if request.META.get("QUERY_STRING") else ""
        script_name = request.META.get("SCRIPT_NAME", "").rstrip("/")
        return HttpResponseRedirect(f"{script_name}{request.project_prefix}/{query}")
    try:
        authorize(request, AUTHENTICATED, {})
    except HttpAnswer as answer:  # 401 page, or the login when LOGIN_AUTO_REDIRECT is on
        return answer.response
    except MlflowError as err:  # SharingHub or GitLab down: 503, and nothing shown
        return HttpResponse(err.message, status=err.status, content_type="text/plain; charset=utf-8")
    if installed_version(settings.MLFLOW_UI_DIR) is None:
        return missing_bundle_page()
    page = (settings.MLFLOW_UI_DIR / "index.html").read_text()
    injected = f"{json_script(integration_config(request), 'mlflow-sh-config')}<script>{SCRIPT}</script>"
    page = page.replace("</head>", f"{injected}</head>", 1) if "</head>" in page else injected + page
    response = HttpResponse(page, content_type="text/html; charset=utf-8")
    # Asked again on every visit: it names the hashed bundle files, which change with each UI release.
    response["Cache-Control"] = "no-cache"
    return response


@transaction.non_atomic_requests
def asset_not_found(request, path):
    """/static-files/<path> that the bundle does not hold (the middleware served the others)."""
    if installed_version(settings.MLFLOW_UI_DIR) is None:
        return missing_bundle_page()
    return HttpResponse(f"No file static-files/{path} in the MLflow UI bundle.", status=404,
                        content_type="text/plain; charset=utf-8")
