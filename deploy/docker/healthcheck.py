"""The image's HEALTHCHECK: exit 0 when /health of the local server answers OK, else 1 (the slim image has no curl).

Reads the same variables as the server: MLFLOW_PORT, MLFLOW_HOST (a wildcard bind is asked on loopback) and
ALLOWED_HOSTS (Django answers 400 to a Host it does not accept, so the first allowed name is sent).
"""

import os
import sys
import urllib.error
import urllib.request


def health_request() -> urllib.request.Request:
    host = os.environ.get("MLFLOW_HOST", "").strip()
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address in a URL
    port = os.environ.get("MLFLOW_PORT", "").strip() or "5000"
    request = urllib.request.Request(f"http://{host}:{port}/health")
    allowed = [name.strip() for name in os.environ.get("ALLOWED_HOSTS", "").split(",") if name.strip()]
    if allowed and "*" not in allowed:
        request.add_header("Host", allowed[0].lstrip("."))  # ".example.org" allows example.org itself too
    return request


def main() -> int:
    try:
        with urllib.request.urlopen(health_request(), timeout=4) as response:
            healthy = response.status == 200 and response.read(16) == b"OK"
    except (urllib.error.URLError, OSError) as err:
        print(f"unhealthy: {err}", file=sys.stderr)
        return 1
    if not healthy:
        print(f"unhealthy: /health answered {response.status}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
