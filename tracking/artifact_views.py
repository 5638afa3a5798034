"""Handlers of the artifact proxy (mlflow-artifacts routes) and of the run-artifact routes the UI reads."""

import mimetypes
import posixpath

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from mlflow_sh.errors import MlflowError
from mlflow_sh.wire import missing_value, run_id_of
from tracking import selectors
from tracking.artifacts import artifact_store, join, safe_path, store_path_from_uri

MULTIPART_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"


class BodyStream:
    """The request body as a read-only, non-seekable file.

    It refuses a body that ends before its Content-Length (a cut connection must not store half a file),
    reads a chunked body to its end when the server says it is complete (gunicorn's wsgi.input_terminated),
    and refuses past `limit` bytes if one is given.
    """

    closed = False

    def __init__(self, request, limit: int | None = None):
        environ = request.META
        length = environ.get("CONTENT_LENGTH")
        self.expected = int(length) if length else None
        if self.expected is None and environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            if not environ.get("wsgi.input_terminated"):
                raise MlflowError("A chunked upload needs a server that ends the body: send Content-Length.",
                                  "BAD_REQUEST", status=411)
            self.stream = environ["wsgi.input"]
        else:
            self.stream = request  # Django's stream, bounded by Content-Length
        self.received, self.limit = 0, limit

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.received += len(chunk)
        if self.limit is not None and self.received > self.limit:
            raise MlflowError.invalid("Artifact size is too large. Max size is 10MB.")
        if not chunk and self.expected is not None and self.received < self.expected:
            raise MlflowError.invalid(f"The upload ended after {self.received} of {self.expected} bytes.")
        return chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        pass


def download_response(path: str) -> StreamingHttpResponse:
    """A file as an attachment that browsers never render in the UI's origin."""
    download = artifact_store().open(path)
    content_type, _ = mimetypes.guess_type(path)
    response = StreamingHttpResponse(download.chunks, content_type=content_type or "application/octet-stream")
    if download.size is not None:
        response["Content-Length"] = str(download.size)
    response["Content-Disposition"] = content_disposition_header(True, posixpath.basename(path))
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- /api/2.0/mlflow-artifacts/... ----------------------------------------------------------------


def upload_artifact(request, data):
    artifact_store().save(safe_path(data["artifact_path"]), BodyStream(request))
    return {}


def download_artifact(request, data):
    return download_response(safe_path(data["artifact_path"]))


def list_artifacts(request, data):
    infos = artifact_store().listdir(safe_path(data["path"] or ""))
    return {"files": [info.as_json() for info in infos]} if infos else {}


def delete_artifact(request, data):
    artifact_store().delete(safe_path(data["artifact_path"]))
    return {}


def _multipart_store():
    store = artifact_store()
    if not (store.supports_multipart and settings.MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD):
        raise MlflowError(MULTIPART_UNSUPPORTED, "NOT_IMPLEMENTED")
    return store


def _multipart_target(data) -> str:
    # Before 3.18 clients sent the whole local path of the file: only its name counts.
    return safe_path(join(safe_path(data["artifact_path"]), posixpath.basename(data["path"])))


def create_multipart_upload(request, data):
    if data["num_parts"] < 1 or data["num_parts"] > 10000:
        raise MlflowError.invalid(f"num_parts must be between 1 and 10000, got {data['num_parts']}.")
    return _multipart_store().create_multipart_upload(_multipart_target(data), data["num_parts"])


def complete_multipart_upload(request, data):
    _multipart_store().complete_multipart_upload(_multipart_target(data), data["upload_id"], data["parts"])
    return {}


def abort_multipart_upload(request, data):
    _multipart_store().abort_multipart_upload(_multipart_target(data), data["upload_id"])
    return {}


def get_presigned_download_url(request, data):
    store = artifact_store()
    if not (store.supports_multipart and settings.MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD):
        raise MlflowError("Presigned downloads are not supported for the current artifact repository", "NOT_IMPLEMENTED")
    return store.presigned_download(safe_path(data["artifact_path"]))


# --- run artifacts, by run id ---------------------------------------------------------------------


def _run_artifact_root(run_id: str) -> tuple[str, str | None]:
    """The run's artifact URI, and its path in this server's store (None when the URI is not proxied here)."""
    artifact_uri = selectors.run_info_get(run_id)["artifact_uri"]
    return artifact_uri, store_path_from_uri(artifact_uri)


def _proxied_root(run_id: str) -> str:
    artifact_uri, root = _run_artifact_root(run_id)
    if root is None:
        raise MlflowError.invalid(f"The artifacts of run {run_id} live at {artifact_uri}, outside this server's store.")
    return root


def list_run_artifacts(request, data):
    run_id = run_id_of(data)
    relative = safe_path(data["path"] or "")
    artifact_uri, root = _run_artifact_root(run_id)
    body = {"root_uri": artifact_uri}
    if root is not None:
        files = [{**info.as_json(), "path": join(relative, info.path)} for info in artifact_store().listdir(join(root, relative))]
        if files:
            body["files"] = files
    return body


def get_run_artifact(request, data):
    return download_response(join(_proxied_root(run_id_of(data)), safe_path(data["path"] or "")))


def upload_run_artifact(request, data):
    run_id = data["run_uuid"] or data["run_id"]
    if not run_id:
        raise MlflowError.invalid("Request must specify run_uuid.")
    if not data["path"]:
        raise MlflowError.invalid("Request must specify path.")
    relative = safe_path(data["path"])
    limit = settings.MLFLOW_UI_UPLOAD_MAX_BYTES
    if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
        raise MlflowError.invalid("Artifact size is too large. Max size is 10MB.")
    artifact_store().save(join(_proxied_root(run_id), relative), BodyStream(request, limit))
    return {}


# --- logged-model artifacts -----------------------------------------------------------------------


def _logged_model_root(model_id: str) -> str:
    location = selectors.logged_model_artifact_root(model_id)
    root = store_path_from_uri(location)
    if root is None:
        raise MlflowError.invalid(f"The artifacts of model {model_id} live at {location}, outside this server's store.")
    return root


def list_logged_model_artifacts(request, data):
    relative = safe_path(data["artifact_directory_path"] or "")
    root = _logged_model_root(data["model_id"])
    files = [{**info.as_json(), "path": join(relative, info.path)} for info in artifact_store().listdir(join(root, relative))]
    body = {"root_uri": selectors.logged_model_artifact_root(data["model_id"])}
    if files:
        body["files"] = files
    return body


def get_logged_model_artifact(request, data):
    if not data["artifact_file_path"]:
        raise missing_value("artifact_file_path")
    return download_response(join(_logged_model_root(data["model_id"]), safe_path(data["artifact_file_path"])))
