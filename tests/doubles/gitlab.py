"""A GitLab test double: a real HTTP server on loopback with the parts of GitLab's API our server uses.

* ``GET /api/v4/user`` — 200 for a known ``Authorization: Bearer <token>``, else 401;
* ``GET /api/v4/projects/<url-quoted path or id>?simple=true`` — ``id``, ``path_with_namespace``, ``topics`` and
  ``permissions.project_access`` / ``permissions.group_access`` (``{"access_level": n}`` or null) for a token
  that can see the project, else 404 (401 for an unknown token);
* OAuth/OIDC: ``GET /.well-known/openid-configuration``, ``GET /oauth/authorize`` (302 back to ``redirect_uri``
  with ``code`` and ``state``, as the user set with ``sign_in()``), ``POST /oauth/token``
  (``grant_type=authorization_code``; checks client id, secret, code and redirect URI) and
  ``GET /oauth/userinfo``.

Fault injection as in the SharingHub double: ``fail(status)``, ``slow(seconds)``, ``reset_faults()``; every
request is recorded in ``state.calls`` (path) and ``state.requests`` (method, path, headers). Run it by hand:

    python -m tests.doubles.gitlab --port 8766 --token dev=30:team/wine:42
    GITLAB_URL=http://127.0.0.1:8766 make serve
"""

import argparse
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from tests.doubles.base import DoubleRequestHandler, FaultState, FaultyDouble

NO_ACCESS, MINIMAL, GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 0, 5, 10, 20, 30, 40, 50


@dataclass
class GitLabProject:
    project_id: int
    path: str
    topics: list[str] = field(default_factory=lambda: ["sharinghub:aimodel"])


@dataclass
class Member:
    project_access: int | None = None
    group_access: int | None = None


@dataclass
class GitLabState(FaultState):
    projects: dict[str, GitLabProject] = field(default_factory=dict)
    members: dict[tuple[str, str], Member] = field(default_factory=dict)  # (token, project path) -> access
    tokens: dict[str, dict] = field(default_factory=dict)  # token -> user {"id", "username", "name", "email"}
    client_id: str = "mlflow-client"
    client_secret: str = "mlflow-secret"
    signed_in: str | None = None  # the token of the user logged in to GitLab in "the browser"
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (token, redirect_uri)
    requests: list[tuple[str, str, dict]] = field(default_factory=list)


class GitLabDouble(FaultyDouble):
    methods = ("GET", "POST")

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.state = GitLabState()
        super().__init__(host, port)

    # --- configuration ---------------------------------------------------------------------------

    def add_project(self, path: str, project_id: int, topics: list[str] | None = None) -> None:
        self.state.projects[path] = GitLabProject(project_id, path, topics if topics is not None else ["sharinghub:aimodel"])

    def token(self, *, user: str | None = None, project: str | None = None, project_access: int | None = None,
              group_access: int | None = None) -> str:
        """A valid token (its own user), optionally a member of a project (directly and/or through its group)."""
        token = user or f"glpat-{len(self.state.tokens) + 1}-{secrets.token_hex(4)}"
        number = len(self.state.tokens) + 1
        self.state.tokens[token] = {"id": number, "username": f"user{number}", "name": f"User {number}",
                                    "email": f"user{number}@example.com"}
        if project is not None:
            self.set_access(token, project, project_access=project_access, group_access=group_access)
        return token

    def set_access(self, token: str, project: str, *, project_access: int | None = None,
                   group_access: int | None = None) -> None:
        self.state.members[(token, project)] = Member(project_access, group_access)

    def revoke(self, token: str) -> None:
        self.state.tokens.pop(token, None)

    def sign_in(self, token: str) -> None:
        """The user whose session GitLab's /oauth/authorize page will approve."""
        self.state.signed_in = token

    def calls_to(self, prefix: str) -> int:
        return sum(1 for path in self.state.calls if path.startswith(prefix))

    # --- the contract ----------------------------------------------------------------------------

    def _bearer(self, headers) -> str | None:
        value = headers.get("Authorization") or ""
        return value[7:].strip() if value[:7].lower() == "bearer " else None

    def answer(self, method: str, path: str, query: dict, headers, form: dict) -> tuple[int, dict | None, dict]:
        """(status, JSON body, extra headers)."""
        self.state.requests.append((method, path, {k: v for k, v in headers.items()}))
        fault = self.record_call(path)
        if fault is not None:
            return fault, {"message": "injected fault"}, {}
        if path == "/.well-known/openid-configuration":
            return 200, {"issuer": self.url, "authorization_endpoint": f"{self.url}/oauth/authorize",
                         "token_endpoint": f"{self.url}/oauth/token", "userinfo_endpoint": f"{self.url}/oauth/userinfo",
                         "jwks_uri": f"{self.url}/oauth/discovery/keys"}, {}
        if path == "/oauth/authorize" and method == "GET":
            return self._authorize(query)
        if path == "/oauth/token" and method == "POST":
            return self._token(form)
        token = self._bearer(headers)
        user = self.state.tokens.get(token) if token else None
        if path == "/oauth/userinfo":
            if user is None:
                return 401, {"error": "invalid_token"}, {}
            return 200, {"sub": str(user["id"]), "nickname": user["username"], "name": user["name"],
                         "email": user["email"]}, {}
        if path == "/api/v4/user":
            if user is None:
                return 401, {"message": "401 Unauthorized"}, {}
            return 200, {**user, "state": "active"}, {}
        if path.startswith("/api/v4/projects/"):
            if token is not None and user is None:
                return 401, {"message": "401 Unauthorized"}, {}
            key = unquote(path[len("/api/v4/projects/"):])
            project = self.state.projects.get(key) or next(
                (p for p in self.state.projects.values() if str(p.project_id) == key), None)
            member = self.state.members.get((token, project.path)) if project and token else None
            if project is None or member is None:
                return 404, {"message": "404 Project Not Found"}, {}
            access = {"project_access": None if member.project_access is None else
                      {"access_level": member.project_access, "notification_level": 3},
                      "group_access": None if member.group_access is None else
                      {"access_level": member.group_access, "notification_level": 3}}
            return 200, {"id": project.project_id, "name": project.path.rsplit("/", 1)[-1],
                         "path_with_namespace": project.path, "topics": project.topics,
                         "permissions": access}, {}
        return 404, {"message": "404 Not Found"}, {}

    def _authorize(self, query: dict) -> tuple[int, dict | None, dict]:
        first = {k: v[0] for k, v in query.items()}
        if first.get("client_id") != self.state.client_id or first.get("response_type") != "code":
            return 400, {"error": "invalid_request"}, {}
        redirect_uri = first.get("redirect_uri", "")
        if self.state.signed_in is None:
            return 401, {"error": "login_required"}, {}
        code = secrets.token_urlsafe(16)
        self.state.codes[code] = (self.state.signed_in, redirect_uri)
        location = f"{redirect_uri}?{urlencode({'code': code, 'state': first.get('state', '')})}"
        return 302, None, {"Location": location}

    def _token(self, form: dict) -> tuple[int, dict | None, dict]:
        if (form.get("client_id"), form.get("client_secret")) != (self.state.client_id, self.state.client_secret):
            return 401, {"error": "invalid_client"}, {}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}, {}
        token, redirect_uri = self.state.codes.pop(form.get("code", ""), (None, None))
        if token is None or redirect_uri != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}, {}
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 7200,
                     "refresh_token": f"refresh-{secrets.token_hex(8)}", "scope": "openid email read_user profile api",
                     "created_at": int(time.time()), "id_token": "not-a-real-jwt"}, {}

    def handle(self, request: DoubleRequestHandler) -> None:
        parts = urlsplit(request.path)
        raw = request.read_body().decode()
        form = {}
        if raw:
            if "json" in (request.headers.get("Content-Type") or ""):
                form = json.loads(raw)
            else:
                form = {k: v[0] for k, v in parse_qs(raw).items()}
        request.send_json(*self.answer(request.command, parts.path, parse_qs(parts.query), request.headers, form))


def main():
    parser = argparse.ArgumentParser(description="Run a GitLab test double on loopback.")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--token", action="append", default=[],
                        help="TOKEN=ACCESS_LEVEL:PROJECT_PATH:PROJECT_ID (repeatable; GitLab levels 10/20/30/40/50), "
                             "e.g. dev=30:team/wine:42")
    parser.add_argument("--topics", default="sharinghub:aimodel", help="comma-separated topics of every project")
    parser.add_argument("--sign-in", default="", help="token approved by /oauth/authorize (browser login)")
    args = parser.parse_args()
    double = GitLabDouble(port=args.port)
    topics = [t for t in args.topics.split(",") if t]
    for spec in args.token:
        token, _, grant = spec.partition("=")
        level, path, project_id = grant.split(":")
        double.add_project(path, int(project_id), topics)
        double.token(user=token, project=path, project_access=int(level))
    if args.sign_in:
        double.sign_in(args.sign_in)
    print(f"GitLab double on {double.url} (OAuth client {double.state.client_id}/{double.state.client_secret}); Ctrl-C to stop")
    double.serve_until_interrupted()


if __name__ == "__main__":
    main()
