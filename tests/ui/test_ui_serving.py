"""The MLflow web UI as this server serves it: the real bundle (fetched once from the installed mlflow package) at
/static-files/ with its cache headers, index.html with our script at / in the global and project views, behind the
/mlflow prefix too; the page when the bundle is missing; and `manage.py fetch_ui`, down to pip and the wheel."""

import json
import logging
import re
import tomllib
import zipfile
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from mlflow_sh.webui import assets
from mlflow_sh.webui.static import HASHED_NAME

ROOT = Path(__file__).resolve().parents[2]
WINE = "team/wine"
CONFIG = re.compile(r'<script id="mlflow-sh-config" type="application/json">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The pinned release's real bundle, put in a folder by fetch_ui's code (the installed package's fast path)."""
    from django.conf import settings

    folder = tmp_path_factory.mktemp("ui") / "bundle"
    assert assets.fetch(folder, settings.MLFLOW_UI_VERSION) == "copied"
    return folder


@pytest.fixture
def ui(bundle, settings):
    """A client whose middleware (built on its first request) serves that bundle."""
    settings.MLFLOW_UI_DIR = bundle
    return Client()


def page_links(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def get_through_ingress(client, url: str, **headers):
    """What nginx does with https://host/mlflow/...: strips /mlflow and says so in X-Script-Name."""
    path = urlsplit(url).path
    assert path.startswith("/mlflow/"), url
    return client.get(path[len("/mlflow"):], HTTP_X_SCRIPT_NAME="/mlflow", **headers)


# --- the bundle's files ---------------------------------------------------------------------------------------


def test_hashed_assets_are_cached_for_good_with_their_types(ui, bundle):
    main_js = next(bundle.glob("static/js/main.*.js")).relative_to(bundle).as_posix()
    main_css = next(bundle.glob("static/css/main.*.css")).relative_to(bundle).as_posix()
    worker = next(bundle.glob("*.worker.js")).name
    cjs = next(bundle.glob("static/media/*.cjs")).relative_to(bundle).as_posix()
    for path, content_type in ((main_js, "text/javascript"), (main_css, "text/css"), (worker, "text/javascript"),
                               (cjs, "text/javascript")):
        response = ui.get(f"/static-files/{path}")
        assert response.status_code == 200, path
        assert response["Content-Type"].startswith(content_type), (path, response["Content-Type"])
        assert response["Cache-Control"] == "max-age=315360000, public, immutable", path
        assert b"".join(response.streaming_content) == (bundle / path).read_bytes()


def test_unhashed_files_are_revalidated_soon(ui):
    for path, content_type in (("favicon.ico", "image/x-icon"), ("manifest.json", "application/json")):
        response = ui.get(f"/static-files/{path}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith(content_type)
        assert response["Cache-Control"] == "max-age=60, public"


def test_browsers_accepting_gzip_get_the_precompressed_file(ui, bundle):
    main_js = next(bundle.glob("static/js/main.*.js")).relative_to(bundle).as_posix()
    response = ui.get(f"/static-files/{main_js}", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert response["Content-Encoding"] == "gzip"
    assert response["Vary"] == "Accept-Encoding"
    assert int(response["Content-Length"]) < (bundle / main_js).stat().st_size / 3


def test_the_hash_test_matches_the_bundles_names(bundle):
    names = [path.name for path in bundle.rglob("*") if path.is_file() and not path.name.endswith(".gz")]
    assert HASHED_NAME.search("main.c2f5f8d4.js") and not HASHED_NAME.search("favicon.ico")
    hashed = [name for name in names if HASHED_NAME.search(name)]
    assert len(hashed) > 0.9 * len(names)  # all but index.html, favicon, manifests, VERSION
    assert not {"index.html", "favicon.ico", "manifest.json", "asset-manifest.json", "VERSION"} & set(hashed)


def test_an_unknown_asset_is_a_plain_404(ui):
    response = ui.get("/static-files/static/js/nope.js")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/plain")


def test_the_bundle_is_also_served_in_a_project_view(ui, bundle):
    main_css = next(bundle.glob("static/css/main.*.css")).relative_to(bundle).as_posix()
    response = ui.get(f"/{WINE}/tracking/static-files/{main_css}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")


# --- the page ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", ["https://sharinghub.example/mlflow/",
                                  f"https://sharinghub.example/mlflow/{WINE}/tracking/"])
def test_every_link_of_the_page_resolves_behind_the_ingress(ui, base):
    """The bundle's links are relative ("static-files/..."): they work under /mlflow and in a project view."""
    page = get_through_ingress(ui, base, HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-cache"
    assert page["Content-Type"] == "text/html; charset=utf-8"
    links = page_links(page.content.decode())
    assert len(links) >= 4 and not [link for link in links if link.startswith("/")], links
    for link in links:
        response = get_through_ingress(ui, urljoin(base, link))
        assert response.status_code == 200, link


def test_the_ui_calls_the_api_relative_to_its_page(ui, bundle):
    """No absolute /ajax-api/ URL in the bundle (it would miss /mlflow and the project view), and the telemetry
    worker's "../ajax-api/..." from static-files/ lands on this view's ui-telemetry route."""
    for script in bundle.rglob("*.js"):
        assert not re.search(rb"[\"'`]/ajax-api/", script.read_bytes()), script.name
    worker = next(bundle.glob("*.worker.js"))
    endpoint = re.search(rb'"(\.\./ajax-api/[^"]+)"', worker.read_bytes()).group(1).decode()
    base = f"https://sharinghub.example/mlflow/{WINE}/tracking/"
    url = urljoin(urljoin(base, f"static-files/{worker.name}"), endpoint)
    assert url == f"{base}ajax-api/3.0/mlflow/ui-telemetry"
    response = get_through_ingress(ui, url)
    assert response.status_code == 200
    assert response.json()["disable_ui_telemetry"] is True


def test_the_script_is_injected_into_the_head_before_the_bundle_runs(ui, bundle):
    page = ui.get("/").content.decode()
    original = (bundle / "index.html").read_text()
    head = page.split("</head>", 1)[0]
    assert 'id="mlflow-sh-config"' in head and "_mlflow_dark_mode_toggle_enabled" in head
    assert page.replace(head, "") == original.replace(original.split("</head>", 1)[0], "")  # the rest untouched
    # MLflow's bundle is deferred: our inline script, in the head, runs first whatever its position.
    assert re.search(r'<script defer="defer" src="static-files/static/js/main\.', head)
    assert "_mlflow_dark_mode_toggle_enabled" in next(bundle.glob("static/js/main.*.js")).read_text()


def test_no_policy_forbids_the_inline_script_and_sharinghub_may_frame_the_page(ui):
    response = ui.get("/")
    assert "Content-Security-Policy" not in response  # none is set; an inline script would need a nonce
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def config_of(response) -> dict:
    return json.loads(CONFIG.search(response.content.decode()).group(1))


def test_open_mode_shows_no_read_only_tag(ui):
    assert config_of(ui.get("/")) == {"readOnly": False}
    assert config_of(ui.get(f"/{WINE}/tracking/")) == {"readOnly": False, "project": WINE, "globalViewUrl": "/"}


def test_sharinghub_mode_tags_the_global_view_and_links_the_project(ui, sharinghub, settings):
    sharinghub.add_project(WINE, 42)
    token = sharinghub.token(project=WINE, level=2)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_X_SCRIPT_NAME": "/mlflow"}
    assert config_of(ui.get("/", **auth)) == {"readOnly": True}
    assert config_of(ui.get(f"/{WINE}/tracking/", **auth)) == {
        "readOnly": False, "project": WINE, "globalViewUrl": "/mlflow/",
        "projectUrl": f"{sharinghub.url}/ui/#/api/stac/collections/ai-model/items/{WINE}",
    }


def test_gitlab_mode_links_the_project_and_logs_out(ui, settings, monkeypatch):
    settings.PERMISSION_MODE, settings.GITLAB_URL = "gitlab", "https://gitlab.example"
    monkeypatch.setattr("permissions.upstream.authenticated", lambda credential: None)
    response = ui.get(f"/{WINE}/tracking/", HTTP_AUTHORIZATION="Bearer t", HTTP_X_SCRIPT_NAME="/mlflow")
    assert config_of(response) == {
        "readOnly": False, "project": WINE, "globalViewUrl": "/mlflow/",
        "projectUrl": f"https://gitlab.example/{WINE}", "logoutUrl": f"/mlflow/{WINE}/tracking/auth/logout",
    }


def test_the_config_cannot_close_the_script_element(ui):
    """A project path is the caller's text: it lands in JSON inside a <script> element, escaped."""
    response = ui.get("/a</script><script>alert(1)</script>/tracking/")
    assert response.status_code == 200
    assert "<script>alert(1)" not in response.content.decode()
    assert config_of(response)["project"] == "a</script><script>alert(1)</script>"


def test_a_project_view_without_its_slash_is_redirected(ui):
    response = ui.get(f"/{WINE}/tracking", {"x": "1"}, HTTP_X_SCRIPT_NAME="/mlflow")
    assert response.status_code == 302
    assert response["Location"] == f"/mlflow/{WINE}/tracking/?x=1"


def test_the_page_is_read_only(ui):
    assert ui.head("/").status_code == 200
    assert ui.post("/").status_code == 405


def test_sharinghub_down_is_503_not_a_page(ui, sharinghub):
    token = sharinghub.token(project=WINE, level=2)
    sharinghub.fail(502)
    response = ui.get("/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503
    assert b"unavailable" in response.content


def test_without_the_bundle_the_page_says_how_to_get_it(settings, tmp_path):
    settings.MLFLOW_UI_DIR = tmp_path / "nothing-here"
    client = Client()
    for path in ("/", f"/{WINE}/tracking/", "/static-files/static/js/main.c2f5f8d4.js"):
        response = client.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code == 404, path
        assert response["Content-Type"] == "text/html; charset=utf-8"
        assert b"python manage.py fetch_ui" in response.content
        assert str(tmp_path).encode() not in response.content  # the start log names the folder, not a public page


def test_the_start_log_says_whether_the_ui_is_served(bundle, settings, tmp_path, caplog):
    from mlflow_sh.startup import log_web_ui

    caplog.set_level(logging.INFO, logger="mlflow_sh")
    settings.MLFLOW_UI_DIR = bundle
    log_web_ui()
    settings.MLFLOW_UI_DIR = tmp_path
    log_web_ui()
    served, missing = caplog.records[-2:]
    assert served.levelno == logging.INFO and "web UI: served, MLflow 3.17.2" in served.getMessage()
    assert missing.levelno == logging.WARNING and "not served" in missing.getMessage()
    assert "fetch_ui" in missing.getMessage()


# --- fetch_ui ----------------------------------------------------------------------------------------------------


def test_the_ui_release_is_the_pinned_client_release(settings):
    test_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert f"mlflow=={settings.MLFLOW_UI_VERSION}" in test_extra


def test_fetch_ui_does_nothing_when_the_release_is_there(bundle, settings, capsys):
    marker = bundle / assets.VERSION_FILE
    before = marker.stat().st_mtime_ns
    call_command("fetch_ui", "--dest", str(bundle))
    assert "already there" in capsys.readouterr().out
    assert marker.stat().st_mtime_ns == before


def fake_wheel(folder: Path, version: str, extra: dict[str, str] | None = None) -> Path:
    """A tiny mlflow wheel: a UI bundle of two files, a Python file beside it, and the metadata pip reads."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"mlflow-{version}-py3-none-any.whl"
    dist_info = f"mlflow-{version}.dist-info"
    files = {
        "mlflow/__init__.py": "raise SystemExit('not for import')\n",
        "mlflow/server/js/build/index.html": "<html><head><title>fake</title></head><body></body></html>" * 40,
        "mlflow/server/js/build/static/js/main.0123abcd.js": "console.log('fake bundle');\n" * 200,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: mlflow\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/RECORD": "",
        **(extra or {}),
    }
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    """pip reads wheels from this folder only: the download path runs for real, without the network."""
    folder = tmp_path / "index"
    folder.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def test_fetch_ui_takes_only_the_bundle_from_the_wheel(local_index, tmp_path, capsys):
    fake_wheel(local_index, "9.9.1")
    dest = tmp_path / "ui"
    call_command("fetch_ui", "--dest", str(dest), "--version", "9.9.1")
    assert "taken from the mlflow wheel" in capsys.readouterr().out
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["VERSION", "index.html", "index.html.gz", "static/js/main.0123abcd.js",
                     "static/js/main.0123abcd.js.gz"]
    assert assets.installed_version(dest) == "9.9.1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index", "ui"]  # nothing left beside it


def test_fetch_ui_replaces_another_release_at_once(local_index, tmp_path):
    fake_wheel(local_index, "9.9.1")
    fake_wheel(local_index, "9.9.2", {"mlflow/server/js/build/static/js/main.4567cdef.js": "new"})
    dest = tmp_path / "ui"
    assert assets.fetch(dest, "9.9.1") == "downloaded"
    assert assets.fetch(dest, "9.9.1") == "present"
    assert assets.fetch(dest, "9.9.2") == "downloaded"
    assert assets.installed_version(dest) == "9.9.2"
    assert (dest / "static/js/main.4567cdef.js").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index", "ui"]


def test_a_failed_fetch_leaves_the_bundle_in_place(local_index, tmp_path):
    fake_wheel(local_index, "9.9.1")
    dest = tmp_path / "ui"
    assets.fetch(dest, "9.9.1")
    with pytest.raises(CommandError, match="pip could not download mlflow==9.9.3"):
        call_command("fetch_ui", "--dest", str(dest), "--version", "9.9.3")  # not in the index
    assert assets.installed_version(dest) == "9.9.1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index", "ui"]


def test_a_wheel_path_escaping_the_folder_is_refused(local_index, tmp_path):
    fake_wheel(local_index, "9.9.4", {"mlflow/server/js/build/../../../../escape.txt": "x"})
    with pytest.raises(assets.FetchError, match="unsafe path"):
        assets.fetch(tmp_path / "ui", "9.9.4")
    assert not (tmp_path / "ui").exists()
    assert not list(tmp_path.rglob("escape.txt"))


def test_a_folder_that_is_not_a_bundle_is_never_replaced(local_index, tmp_path):
    fake_wheel(local_index, "9.9.1")
    dest = tmp_path / "ui"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(CommandError, match="holds no MLflow UI bundle"):
        call_command("fetch_ui", "--dest", str(dest), "--version", "9.9.1")
    assert (dest / "notes.txt").read_text() == "mine"
