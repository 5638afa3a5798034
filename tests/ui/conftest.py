"""Browser fixtures: the real MLflow web UI in Debian's headless Chromium, driven by Playwright, against our
server run as in production (`manage.py serve`: gunicorn, its own PostgreSQL database, the real UI serving).

Why a server process and not pytest-django's in-process `live_server`: the walks need data seeded once per module
and shared by several tests, but every test that uses `live_server` flushes the database afterwards; and the UI
must go through the serving path a deployment uses (gunicorn, the settings read from the environment).

Why the browser is module-scoped and not session-scoped: Playwright's sync API keeps an asyncio loop running in
the test thread for as long as it is started, and Django then refuses ORM calls from that thread
(SynchronousOnlyOperation) — so it must be stopped before any other module's database tests run.
"""

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium, never a browser downloaded by Playwright (`playwright install` is not used: no network).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}


def screenshot_dir() -> Path:
    """Where the walks leave their screenshots: MLFLOW_SH_SCREENSHOTS, else test-artifacts/screenshots/."""
    folder = Path(os.environ.get("MLFLOW_SH_SCREENSHOTS") or ROOT / "test-artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def browser_missing_reason() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need Playwright for Python (pip install -e '.[test]')"
    return None


def pytest_collection_modifyitems(config, items):
    """Browser tests run in the default suite where Chromium exists, and skip saying why elsewhere."""
    reason = browser_missing_reason()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.skip(reason=reason))


# --- the server, as deployed ----------------------------------------------------------------------


@dataclass
class Database:
    """A PostgreSQL database of its own, on the server the suite uses (TEST_BACKEND_STORE_URI)."""

    name: str
    uri: str


def _admin_connect(admin: dict):
    import psycopg

    return psycopg.connect(autocommit=True, **admin)


@pytest.fixture(scope="module")
def ui_database(request):
    """A fresh database per module, dropped afterwards; the server process migrates it itself."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    admin = {"host": db["HOST"] or "127.0.0.1", "port": int(db["PORT"] or 5432), "user": db["USER"] or "postgres",
             "password": db["PASSWORD"] or None, "dbname": "postgres"}
    module = re.sub(r"\W", "_", request.module.__name__.rsplit(".", 1)[-1])[:20]
    name = f"test_{db['NAME']}_{module}"[:63]
    with _admin_connect(admin) as conn:  # psycopg directly: this thread never uses Django's ORM
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    password = f":{quote(admin['password'], safe='')}" if admin["password"] else ""
    uri = f"postgresql://{quote(admin['user'], safe='')}{password}@{admin['host']}:{admin['port']}/{name}"
    yield Database(name, uri)
    with _admin_connect(admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class ServerProcess:
    url: str
    log: Path
    process: subprocess.Popen

    def log_tail(self, size: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-size:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # gunicorn's quick shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_server(*, database_uri: str, artifacts: Path, log: Path, extra_env: dict | None = None) -> ServerProcess:
    """`manage.py serve` (migrate, then gunicorn) on a free loopback port; waits for /health."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("SHARINGHUB_", "GITLAB_", "MLFLOW_", "STAC_", "DJANGO_")) and k != "CACHE_URL"}
    env = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "mlflow_sh.settings",
        "SECRET_KEY": "ui-test-secret-key-not-for-production",
        "MLFLOW_BACKEND_STORE_URI": database_uri,
        "MLFLOW_ARTIFACTS_DESTINATION": str(artifacts),
        "MLFLOW_HOST": "127.0.0.1",
        "MLFLOW_PORT": str(port),
        # The UI fires a dozen requests at once; two workers of four threads as a small deployment would have.
        "MLFLOW_WORKERS": "2",
        **(extra_env or {}),
    }
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "manage.py", "serve"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = ServerProcess(f"http://127.0.0.1:{port}", log, process)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if requests.get(f"{server.url}/health", timeout=1).text == "OK":
                return server
        except requests.RequestException:  # not listening yet
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"server did not start:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def ui_bundle(tmp_path_factory) -> Path:
    """The web UI put in place as a deployment does it: `manage.py fetch_ui` into the folder MLFLOW_UI_DIR names."""
    folder = tmp_path_factory.mktemp("ui-bundle") / "ui"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mlflow_sh.settings", "MLFLOW_UI_DIR": str(folder)}
    done = subprocess.run([sys.executable, "manage.py", "fetch_ui"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"manage.py fetch_ui failed:\n{done.stdout}\n{done.stderr}"
    assert (folder / "index.html").is_file(), done.stdout
    return folder


@pytest.fixture(scope="module")
def server_factory(ui_database, ui_bundle, tmp_path_factory):
    """Starts servers on the module's database and artifact folder, serving the UI bundle; all are stopped at the
    module's end."""
    artifacts = tmp_path_factory.mktemp("ui-artifacts")
    started: list[ServerProcess] = []

    def start(label: str, **extra_env) -> ServerProcess:
        log = tmp_path_factory.mktemp(f"ui-server-{label}") / "server.log"
        extra_env = {"MLFLOW_UI_DIR": str(ui_bundle), **extra_env}
        server = start_server(database_uri=ui_database.uri, artifacts=artifacts, log=log, extra_env=extra_env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# --- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Playwright gives every launch a fresh temporary user-data-dir)."""
    reason = browser_missing_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@dataclass(frozen=True)
class Expected:
    """A request the UI may see fail, and why (the walks fail on any failing request not listed)."""

    method: str
    path: str  # regular expression on the path below the UI's base URL, e.g. r"ajax-api/2\.0/mlflow/gateway-proxy"
    status: int
    why: str

    def matches(self, method: str, path: str, status: int) -> bool:
        return self.method == method and self.status == status and re.fullmatch(self.path, path) is not None


@dataclass
class Seen:
    method: str
    url: str
    path: str
    status: int


@dataclass
class Walk:
    """One browser context (its own cookies and storage) walking the UI from `base` (ends with /), recording
    every response, failed request, uncaught page error and console error, with a screenshot per step."""

    page: object
    base: str
    name: str
    folder: Path
    responses: list[Seen] = field(default_factory=list)
    request_failures: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    in_flight: list = field(default_factory=list)
    steps: int = 0

    def relative(self, url: str) -> str:
        """The path below the UI's base URL (without the query), so one allow-list serves every view."""
        path = url.split("#", 1)[0].split("?", 1)[0]
        return path[len(self.base):] if path.startswith(self.base) else path

    def record(self, response) -> None:
        request = response.request
        self.responses.append(Seen(request.method, response.url, self.relative(response.url), response.status))

    def started(self, request) -> None:
        # The page's API calls (and documents) are what its content waits for. Scripts and styles are not counted:
        # a Worker's script never gets its "requestfinished" event in Playwright, so it would never settle.
        if request.resource_type in ("fetch", "xhr", "document"):
            self.in_flight.append(request)

    def done(self, request) -> None:
        if request in self.in_flight:
            self.in_flight.remove(request)

    def record_failure(self, request) -> None:
        self.done(request)
        self.request_failures.append(f"{request.method} {request.url}: {request.failure}")

    def open(self, route: str, *, expect: list[str], step: str, timeout: float = 30_000, before_shot=None) -> None:
        """Goes to `base` + route (a '#/...' route of the single-page app), waits for every text in `expect` to be
        visible, then for the network to settle, and takes a full-page screenshot."""
        self.page.goto(self.base + route, wait_until="domcontentloaded")
        self.wait_for(expect, step=step, timeout=timeout, before_shot=before_shot)

    def wait_for(self, expect: list[str], *, step: str, timeout: float = 30_000, before_shot=None) -> None:
        text = None
        try:
            for text in expect:
                self.page.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=timeout)
            if before_shot is not None:
                before_shot(self)
        except Exception as error:  # a timeout, usually: say where, with the picture and what had failed so far
            self.shoot(f"{step}-FAILED")
            reason = str(error).splitlines()[0]
            raise AssertionError(f"{self.name}/{step} at {self.page.url}: waiting for {text!r}: {reason}\n"
                                 f"{self.failure_report()}") from None
        started = time.monotonic()
        self.settle()
        print(f"{self.name}/{step}: settled in {time.monotonic() - started:.1f}s, {len(self.responses)} responses")
        self.shoot(step)

    def settle(self, timeout: float = 10.0, quiet: float = 0.5) -> None:
        """Lets the requests the page fires after its first content finish (charts, previews, lazy panels): returns
        once no request has been in flight for `quiet` seconds. (Playwright's "networkidle" counts requests no page
        of ours waits for; this counts the page's own.) A page still busy after `timeout` is left as it is: what
        it fetched so far is recorded all the same, and the walk's assertions judge it."""
        deadline = time.monotonic() + timeout
        idle_since = None
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(100)  # lets Playwright deliver the page's events
            if self.in_flight:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= quiet:
                return
        print(f"{self.name}: still in flight after {timeout}s: {[r.url for r in self.in_flight]}")

    def shoot(self, step: str) -> Path:
        """A full-page screenshot, numbered in walk order (the app scrolls inside its own frame, so it is what is
        in view)."""
        self.steps += 1
        path = self.folder / f"{self.name}-{self.steps:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def failures(self, expected: list[Expected]) -> list[Seen]:
        return [seen for seen in self.responses if seen.status >= 400
                and not any(e.matches(seen.method, seen.path, seen.status) for e in expected)]

    def failure_report(self, expected: list[Expected] = ()) -> str:
        lines = [f"  {s.status} {s.method} {s.url}" for s in self.failures(list(expected))]
        lines += [f"  request failed: {failure}" for failure in self.request_failures]
        lines += [f"  page error: {error}" for error in self.page_errors]
        return "\n".join(lines) or "  (no failing request, no page error)"

    def assert_clean(self, expected: list[Expected], allowed_page_errors: list[str] = ()) -> None:
        """Fails on any 4xx/5xx not in `expected`, any request that got no answer (refused, reset, blocked) and any
        uncaught page error not matching `allowed_page_errors`, printing them all; console errors are printed
        only (the UI logs every 404 it expects there too)."""
        self.settle()
        unexpected = self.failures(expected)
        # A request the page itself cancels (a fetch superseded by a newer one) is no failure of the server.
        broken = [failure for failure in self.request_failures if not failure.endswith("net::ERR_ABORTED")]
        errors = [e for e in self.page_errors if not any(re.search(pattern, e) for pattern in allowed_page_errors)]
        if self.console_errors:
            print(f"\n{self.name}: console errors (not failing the walk):\n  " + "\n  ".join(self.console_errors))
        lines = [f"  {s.status} {s.method} {s.url}" for s in unexpected]
        lines += [f"  request failed: {failure}" for failure in broken]
        lines += [f"  page error: {error}" for error in errors]
        if lines:
            print(f"\n{self.name}: unexpected failures:\n" + "\n".join(lines))
        assert not lines, f"{self.name}: the UI saw unexpected failures:\n" + "\n".join(lines)


@pytest.fixture
def walk_factory(browser):
    """A fresh context and page per walk (optionally with cookies), closed at the end of the test."""
    contexts = []

    def start(base: str, name: str, *, cookies: list[dict] | None = None) -> Walk:
        assert base.endswith("/"), "the UI's requests are relative to its page: the base must end with /"
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(30_000)
        if cookies:
            context.add_cookies(cookies)
        contexts.append(context)
        page = context.new_page()
        walk = Walk(page, base, name, screenshot_dir())
        for old in walk.folder.glob(f"{name}-*.png"):
            old.unlink()
        page.on("request", walk.started)
        page.on("requestfinished", walk.done)
        page.on("response", walk.record)
        page.on("requestfailed", walk.record_failure)
        page.on("pageerror", lambda error: walk.page_errors.append(f"{error.name}: {error.message}"))
        page.on("console", lambda message: message.type == "error" and walk.console_errors.append(
            f"[at {page.url[len(base):]}] {message.text.splitlines()[0]} ({message.location.get('url', '')})"))
        return walk

    yield start
    for context in contexts:
        context.close()
