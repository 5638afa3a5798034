"""Behind the ingress: the path prefix it strips comes back as X-Script-Name, and TLS ends before us."""

import re

from django.conf import settings
from django.urls import set_script_prefix

PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")


class ForwardedPrefixMiddleware:
    """Takes X-Script-Name (e.g. /mlflow) as the script name, so every URL the server builds carries it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        prefix = request.META.get("HTTP_X_SCRIPT_NAME", "").rstrip("/")
        if settings.TRUST_PROXY_HEADERS and prefix and PREFIX.match(prefix):
            request.META["SCRIPT_NAME"] = prefix
            request.path = f"{prefix}{request.path_info}"
            set_script_prefix(f"{prefix}/")
        return self.get_response(request)
