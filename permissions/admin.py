"""The admin's operations on permissions: clearing the cache of SharingHub's and GitLab's answers."""

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from permissions import upstream

admin.site.index_template = "permissions/admin_index.html"  # Django's index, plus a link to the page below


def clear_permission_cache(request):
    """Staff only: the URL conf wraps it in admin_view (Django's staff login, CSRF). GET explains, POST clears."""
    shared = upstream._remote_cache()
    if request.method == "POST":
        upstream.clear_cache()
        if shared:
            messages.success(request, f"Permission cache cleared: every server process asks again within "
                                      f"{upstream.LOCAL_SECONDS:g} seconds.")
        else:
            messages.warning(request, "Permission cache cleared in this server process only: the other worker "
                                      "processes keep their local cache until its answers expire (set CACHE_URL to "
                                      "share one cache).")
        return HttpResponseRedirect(request.path)
    context = {
        **admin.site.each_context(request),
        "title": "Permission cache",
        "mode": settings.PERMISSION_MODE,
        "auth_timeout": settings.SHARINGHUB_AUTH_CACHE_TIMEOUT,
        "project_timeout": settings.PROJECT_CACHE_TIMEOUT,
        "shared": shared,
    }
    return TemplateResponse(request, "permissions/clear_permission_cache.html", context)
