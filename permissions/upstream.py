"""The only code that talks to SharingHub and GitLab: authentication and per-project access levels, cached.

Cache keys hold a hash of the credential, never the credential. Any failure of the upstream (unreachable,
slow, 5xx) is TEMPORARILY_UNAVAILABLE: access is never granted by default.
"""

import functools
import hashlib
import logging
import time
from dataclasses import dataclass
from urllib.parse import quote

import requests
from django.conf import settings
from django.core.cache import cache
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from mlflow_sh.errors import MlflowError

logger = logging.getLogger("mlflow_sh.permissions")

# Roles as GitLab numbers them; SharingHub's access levels 1-4 map onto the first four.
GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50
SHARINGHUB_LEVELS = {1: GUEST, 2: REPORTER, 3: DEVELOPER, 4: MAINTAINER}


@dataclass(frozen=True)
class Credential:
    kind: str  # "bearer", "cookie", or "default" (SharingHub's default-token mode: no credential sent)
    secret: str = ""

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.kind}:{self.secret}".encode()).hexdigest()


@dataclass(frozen=True)
class ProjectAccess:
    project_id: int
    role: int  # GitLab role value; 0 when the project is not visible


NOT_VISIBLE = ProjectAccess(project_id=0, role=0)


class Unauthenticated(Exception):
    """The upstream says the credential is missing, invalid or expired."""


def unavailable(what: str, cause) -> MlflowError:
    logger.warning("%s failed: %s", what, cause)  # never the credential: it travels in headers only
    return MlflowError(f"The permission service is unavailable ({what}): try again shortly.", "TEMPORARILY_UNAVAILABLE")


@functools.cache
def http() -> requests.Session:
    """One pooled session; idempotent GETs retried once on connection errors and 502/503/504."""
    session = requests.Session()
    retry = Retry(total=1, connect=1, read=0, status=1, backoff_factor=0.2, status_forcelist=(502, 503, 504),
                  allowed_methods=frozenset({"GET"}), raise_on_status=False)
    session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=16))
    session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=16))
    return session


def _get(url: str, credential: Credential, *, what: str) -> requests.Response:
    headers, cookies = {}, {}
    if credential.kind == "bearer":  # GitLab takes the token as a Bearer; SharingHub as X-Gitlab-Token
        headers["Authorization" if settings.PERMISSION_MODE == "gitlab" else "X-Gitlab-Token"] = (
            f"Bearer {credential.secret}" if settings.PERMISSION_MODE == "gitlab" else credential.secret
        )
    elif credential.kind == "cookie":
        cookies[settings.SHARINGHUB_SESSION_COOKIE] = credential.secret
    try:
        return http().get(url, headers=headers, cookies=cookies, allow_redirects=False,
                          timeout=(settings.PERMISSION_CONNECT_TIMEOUT, settings.PERMISSION_READ_TIMEOUT))
    except requests.RequestException as err:
        raise unavailable(what, type(err).__name__) from None


# A few seconds of per-process memory in front of the shared cache: a client logging in a loop asks
# about the same credential and project many times a second, and Redis would cost a round trip each time.
LOCAL_SECONDS = 5.0
_local: dict[str, tuple[float, object]] = {}


def _remote_cache() -> bool:
    return not settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")  # local memory needs no layer


def _cache_get(key: str):
    hit = _local.get(key) if _remote_cache() else None
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    value = cache.get(key)
    if value is not None and _remote_cache():
        _local[key] = (time.monotonic() + LOCAL_SECONDS, value)
    return value


def _cache_set(key: str, value, timeout: float) -> None:
    cache.set(key, value, timeout)
    if _remote_cache():
        if len(_local) > 10_000:
            _local.clear()
        _local[key] = (time.monotonic() + min(LOCAL_SECONDS, timeout), value)


def forget_local_cache() -> None:
    _local.clear()


# Every key carries the cache's generation: clearing starts a new one, so that all earlier answers are ignored at
# once by every process sharing the cache (cache.clear() would flush the whole Redis database CACHE_URL names).
GENERATION_KEY = "mlflow-sh:generation"


def _generation() -> int:
    generation = _cache_get(GENERATION_KEY)
    if generation is None:  # first use, or evicted: start at 0 (add() never overwrites a newer generation)
        cache.add(GENERATION_KEY, 0, timeout=None)
        generation = cache.get(GENERATION_KEY, 0)
    return generation


def clear_cache() -> None:
    """Forgets every cached authentication and access level (the admin's "Clear permission cache").
    Other processes follow within LOCAL_SECONDS; with the local-memory cache, only this process has one."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # no generation yet, or evicted
        cache.set(GENERATION_KEY, 1, timeout=None)
    _local.clear()


def authenticated(credential: Credential) -> None:
    """Raises Unauthenticated unless the credential is valid; a yes is cached, a no is asked again next time."""
    if settings.PERMISSION_MODE == "sharinghub" and credential.kind == "default":
        return  # default-token mode: SharingHub answers for its own default identity
    key = f"mlflow-sh:auth:{_generation()}:{credential.fingerprint()}"
    if _cache_get(key):
        return
    if settings.PERMISSION_MODE == "gitlab":
        response = _get(f"{settings.GITLAB_URL}/api/v4/user", credential, what="GitLab user check")
    else:
        response = _get(f"{settings.SHARINGHUB_URL}/api/auth/info", credential, what="SharingHub authentication")
    if response.status_code >= 500:
        raise unavailable("authentication", f"HTTP {response.status_code}")
    if response.status_code != 200:
        raise Unauthenticated()
    _cache_set(key, True, settings.SHARINGHUB_AUTH_CACHE_TIMEOUT)


def project_access(credential: Credential, project_path: str) -> ProjectAccess:
    """The caller's role on the project, from SharingHub's checker or GitLab's project API; cached."""
    project_hash = hashlib.sha256(project_path.encode()).hexdigest()
    key = f"mlflow-sh:project:{_generation()}:{credential.fingerprint()}:{project_hash}"
    cached = _cache_get(key)
    if cached is not None:
        return ProjectAccess(*cached)
    access = _gitlab_project(credential, project_path) if settings.PERMISSION_MODE == "gitlab" else \
        _sharinghub_project(credential, project_path)
    _cache_set(key, (access.project_id, access.role), settings.PROJECT_CACHE_TIMEOUT)
    return access


def _sharinghub_project(credential: Credential, project_path: str) -> ProjectAccess:
    url = f"{settings.SHARINGHUB_URL}/api/check/{quote(project_path, safe='')}?info=true"
    response = _get(url, credential, what="SharingHub project check")
    if response.status_code == 401:
        raise Unauthenticated()
    if response.status_code == 404 or response.status_code == 500 and "Category not found" in response.text:
        return NOT_VISIBLE  # SharingHub answers 500 for a project without a category topic
    if response.status_code != 200:
        raise unavailable("project check", f"HTTP {response.status_code}")
    try:
        info = response.json()
        if settings.SHARINGHUB_STAC_COLLECTION not in (info.get("categories") or []):
            return NOT_VISIBLE
        return ProjectAccess(int(info["id"]), SHARINGHUB_LEVELS.get(info.get("access_level"), 0))
    except (ValueError, KeyError, TypeError):
        raise unavailable("project check", "malformed answer") from None


def _gitlab_project(credential: Credential, project_path: str) -> ProjectAccess:
    url = f"{settings.GITLAB_URL}/api/v4/projects/{quote(project_path, safe='')}?simple=true"
    response = _get(url, credential, what="GitLab project lookup")
    if response.status_code == 401:
        raise Unauthenticated()
    if response.status_code in {403, 404}:
        return NOT_VISIBLE
    if response.status_code != 200:
        raise unavailable("project lookup", f"HTTP {response.status_code}")
    try:
        info = response.json()
        if not set(settings.GITLAB_MANDATORY_TOPICS) <= set(info.get("topics") or []):
            return NOT_VISIBLE
        permissions = info.get("permissions") or {}
        levels = [(permissions.get(scope) or {}).get("access_level") or 0 for scope in ("project_access", "group_access")]
        return ProjectAccess(int(info["id"]), max(levels))
    except (ValueError, KeyError, TypeError):
        raise unavailable("project lookup", "malformed answer") from None
