"""Static files with whitenoise: the admin's at /static/, the MLflow UI bundle at /static-files/, under any prefix."""

import re
from posixpath import basename

from django.conf import settings
from django.contrib.staticfiles.storage import StaticFilesStorage
from django.urls import get_script_prefix
from whitenoise.middleware import WhiteNoiseMiddleware

UI_PREFIX = "/static-files/"  # where the bundle's index.html looks for it (relative links: "static-files/...")
# Webpack's content hashes in the bundle's names (main.c2f5f8d4.js, warning.290a3b14….svg): such a file never
# changes, so browsers may keep it for good; the others (favicon.ico, the manifests) get whitenoise's 60 seconds.
HASHED_NAME = re.compile(r"\.[0-9a-f]{8,32}\.")


class ScriptPrefixedStaticFilesStorage(StaticFilesStorage):
    """Static URLs under the current request's script prefix (X-Script-Name, e.g. /mlflow/static/...).

    Django adds SCRIPT_NAME to a relative STATIC_URL only the first time the setting is read, then keeps that
    value for the process: behind the ingress the admin's CSS links would lose (or keep a stale) prefix.
    """

    def url(self, name):
        return get_script_prefix().rstrip("/") + super().url(name)


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """Whitenoise for the apps' static files, plus the UI bundle from MLFLOW_UI_DIR when it is there.

    Runs after the project view middleware, so /<project>/tracking/static-files/... is served as well.
    """

    def __init__(self, get_response=None, settings=settings):
        super().__init__(get_response, settings)
        if (settings.MLFLOW_UI_DIR / "index.html").is_file():  # absent: the index page says how to fetch it
            self.add_files(str(settings.MLFLOW_UI_DIR), prefix=UI_PREFIX)

    def immutable_file_test(self, path, url):
        if url.startswith(UI_PREFIX):
            return HASHED_NAME.search(basename(url)) is not None
        return super().immutable_file_test(path, url)
