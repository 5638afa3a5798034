"""A SharingHub test double: a real HTTP server on loopback with SharingHub's checker contract.

Serves GET /api/auth/info and GET /api/check/<project>?info=true for configured tokens, session cookies and
projects, with fault injection (5xx, slow answers, 401, refused connections), and the browser login
GET /api/auth/login?redirect_uri=... as the user given to sign_in(). Tests drive it from Python;
a developer can run it by hand and point the server at it:

    python -m tests.doubles.sharinghub --port 8765 --token dev-token=3:team/wine:42
    SHARINGHUB_URL=http://127.0.0.1:8765 make serve
"""

import argparse
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from tests.doubles.base import DoubleRequestHandler, FaultState, FaultyDouble

DEFAULT_TOKEN_IDENTITY = "<default-token>"


@dataclass
class Project:
    project_id: int
    path: str
    categories: list[str] = field(default_factory=lambda: ["ai-model"])


@dataclass
class SharingHubState(FaultState):
    projects: dict[str, Project] = field(default_factory=dict)
    levels: dict[tuple[str, str], int] = field(default_factory=dict)  # (identity, project path) -> 0..4
    tokens: set[str] = field(default_factory=set)
    cookies: dict[str, str] = field(default_factory=dict)  # session cookie value -> token
    signed_in: str | None = None  # the token a browser login at /api/auth/login becomes


class SharingHubDouble(FaultyDouble):
    cookie_name = "sharinghub-session"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.state = SharingHubState()
        super().__init__(host, port)

    # --- configuration ---------------------------------------------------------------------------

    def add_project(self, path: str, project_id: int, categories: list[str] | None = None) -> None:
        self.state.projects[path] = Project(project_id, path, categories if categories is not None else ["ai-model"])

    def token(self, *, user: str | None = None, project: str | None = None, level: int | None = None) -> str:
        """A valid token (its own identity), optionally with an access level on a project."""
        token = user or f"token-{len(self.state.tokens) + 1}"
        self.state.tokens.add(token)
        if project is not None and level is not None:
            self.set_access(token, project, level)
        return token

    def cookie_for(self, token: str) -> str:
        cookie = f"cookie-{token}"
        self.state.cookies[cookie] = token
        return cookie

    def set_access(self, identity: str, project: str, level: int) -> None:
        self.state.levels[(identity, project)] = level

    def sign_in(self, token: str) -> None:
        """The next browser login (GitLab's OIDC round trip, skipped here) is this token's user."""
        self.state.signed_in = token

    # --- the contract ----------------------------------------------------------------------------

    def _identity(self, headers) -> str | None:
        token = headers.get("X-Gitlab-Token")
        if token is None:
            for part in (headers.get("Cookie") or "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == self.cookie_name:
                    token = self.state.cookies.get(value)
        if token is None:
            return DEFAULT_TOKEN_IDENTITY  # SharingHub falls back to its default token
        return token if token in self.state.tokens else None

    def answer(self, path: str, query: dict, headers) -> tuple[int, dict | None]:
        fault = self.record_call(path)
        if fault is not None:
            return fault, {"detail": "injected fault"}
        identity = self._identity(headers)
        if path == "/api/auth/info":
            if identity is None:
                return 401, {"detail": "Invalid token"}
            if identity == DEFAULT_TOKEN_IDENTITY:
                return 401, {"detail": "Not authenticated, but server default token is enabled. Missing user token, "
                                       "either use login, or pass it as header or query"}
            return 200, {"access_token": identity}
        if path.startswith("/api/check/"):
            if identity is None:
                return 401, {"detail": "HTTP 401 | POST gitlab/api/graphql: 401 Unauthorized"}
            project_key = unquote(path[len("/api/check/"):])
            project = self.state.projects.get(project_key) or next(
                (p for p in self.state.projects.values() if str(p.project_id) == project_key), None)
            level = self.state.levels.get((identity, project.path)) if project else None
            if project is None or not level:
                return 404, {"detail": "Not Found"}
            if not project.categories:
                return 500, {"detail": "Category not found in [...]"}
            if "info" not in query:
                return 200, None
            return 200, {"id": project.project_id, "name": project.path.rsplit("/", 1)[-1], "path": project.path,
                         "categories": project.categories, "access_level": level}
        return 404, {"detail": "Not Found"}

    def handle(self, request: DoubleRequestHandler) -> None:
        parts = urlsplit(request.path)
        if parts.path == "/api/auth/login" and self.state.signed_in is not None:
            # SharingHub's login ends by setting its session cookie and sending the browser to redirect_uri.
            self.record_call(parts.path)
            cookie = self.cookie_for(self.state.signed_in)
            back = parse_qs(parts.query).get("redirect_uri", ["/"])[0]
            headers = {"Location": back, "Set-Cookie": f"{self.cookie_name}={cookie}; Path=/"}
            request.send_json(307, None, headers=headers)
            return
        request.send_json(*self.answer(parts.path, parse_qs(parts.query), request.headers))


def main():
    parser = argparse.ArgumentParser(description="Run a SharingHub test double on loopback.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", action="append", default=[],
                        help="TOKEN=LEVEL:PROJECT_PATH:PROJECT_ID (repeatable), e.g. dev=3:team/wine:42")
    args = parser.parse_args()
    double = SharingHubDouble(port=args.port)
    for spec in args.token:
        token, _, grant = spec.partition("=")
        level, path, project_id = grant.split(":")
        double.add_project(path, int(project_id))
        double.token(user=token, project=path, level=int(level))
    print(f"SharingHub double on {double.url}; Ctrl-C to stop")
    double.serve_until_interrupted()


if __name__ == "__main__":
    main()
