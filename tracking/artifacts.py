"""The artifact store behind the mlflow-artifacts proxy: a local folder or S3, paths that cannot escape
their root, and files streamed both ways in 1 MiB chunks."""

import functools
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.test.signals import setting_changed
from django.dispatch import receiver

from mlflow_sh.errors import MlflowError

CHUNK_BYTES = 1024 * 1024
UPLOAD_PREFIX = ".upload-"  # local uploads land under this name, then are renamed into place
ARTIFACTS_URI_ANCHOR = "/api/2.0/mlflow-artifacts/artifacts"


def invalid_path() -> MlflowError:
    return MlflowError.invalid("Invalid path")


def safe_path(path: str) -> str:
    """A clean relative path that cannot leave its root, or 400 "Invalid path" (percent-encodings decoded first)."""
    variants, current = [path], path
    for _ in range(3):  # %252e%252e is %2e%2e is ..
        decoded = unquote(current)
        if decoded == current:
            break
        variants.append(decoded)
        current = decoded
    for variant in variants:
        if (
            "\\" in variant or "\x00" in variant or "#" in variant
            or ".." in variant.split("/")
            or PurePosixPath(variant).is_absolute() or PureWindowsPath(variant).is_absolute()
            or (len(variant) >= 2 and variant[1] == ":")
        ):
            raise invalid_path()
    return "/".join(part for part in path.split("/") if part not in ("", "."))


def join(*parts: str) -> str:
    return "/".join(part.strip("/") for part in parts if part and part.strip("/"))


def store_path_from_uri(uri: str) -> str | None:
    """The store path of an artifact URI this server proxies (mlflow-artifacts:/..., or the older http form)."""
    parts = urlsplit(uri)
    if parts.scheme == "mlflow-artifacts":
        return safe_path(parts.path.lstrip("/"))
    if parts.scheme in {"http", "https"} and ARTIFACTS_URI_ANCHOR in parts.path:
        return safe_path(parts.path.split(ARTIFACTS_URI_ANCHOR, 1)[1].lstrip("/"))
    return None


@dataclass(frozen=True)
class FileInfo:
    path: str
    is_dir: bool
    file_size: int | None = None

    def as_json(self) -> dict:
        body = {"path": self.path, "is_dir": self.is_dir}
        if not self.is_dir and self.file_size is not None:
            body["file_size"] = self.file_size
        return body


@dataclass
class Download:
    chunks: Iterator[bytes]
    size: int | None


def not_found(path: str) -> MlflowError:
    return MlflowError.not_found(f"No such artifact: '{path}'")


class LocalArtifactStore:
    """Files under MLFLOW_ARTIFACTS_DESTINATION; symlinks are followed only if they stay inside it."""

    supports_multipart = False

    def __init__(self, storage: FileSystemStorage):
        self.root = Path(storage.location).resolve()

    def describe(self) -> str:
        return f"local folder {self.root}"

    def _resolve(self, path: str) -> Path:
        target = Path(os.path.realpath(self.root / path))
        if target != self.root and self.root not in target.parents:
            raise invalid_path()
        return target

    def save(self, path: str, stream) -> None:
        """Written beside the target, then renamed: a failed upload leaves nothing visible."""
        target = self._resolve(path)
        if target == self.root or target.is_dir():
            raise MlflowError.invalid(f"Cannot write a file over the directory '{path}'.")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise MlflowError.invalid(f"Cannot write '{path}': a file stands where a folder is needed.") from None
        self._resolve(path)  # the folders just made may not have moved it, but a racing symlink could
        handle, partial = tempfile.mkstemp(dir=target.parent, prefix=UPLOAD_PREFIX)
        try:
            with os.fdopen(handle, "wb") as out:
                while chunk := stream.read(CHUNK_BYTES):
                    out.write(chunk)
            os.replace(partial, target)
        except BaseException:
            os.unlink(partial)
            raise

    def open(self, path: str) -> Download:
        target = self._resolve(path)
        if target.is_dir():
            raise MlflowError.invalid(f"The artifact '{path}' is a directory.")
        try:
            handle = target.open("rb")
        except FileNotFoundError:
            raise not_found(path) from None
        return Download(chunks=_read_chunks(handle), size=os.fstat(handle.fileno()).st_size)

    def listdir(self, path: str) -> list[FileInfo]:
        target = self._resolve(path)
        if not target.is_dir():
            return []
        infos = []
        with os.scandir(target) as entries:
            for entry in entries:
                if entry.name.startswith(UPLOAD_PREFIX):
                    continue
                is_dir = entry.is_dir()
                infos.append(FileInfo(entry.name, is_dir, None if is_dir else entry.stat().st_size))
        return sorted(infos, key=lambda info: info.path)

    def delete(self, path: str) -> None:
        target = self._resolve(path)
        if target == self.root:
            raise MlflowError.invalid("The artifact root itself cannot be deleted.")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        else:
            raise not_found(path)


def _read_chunks(handle) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


class S3ArtifactStore:
    """Objects under s3://bucket/prefix, through django-storages; boto3's client for what it lacks."""

    supports_multipart = True

    def __init__(self, storage):
        self.storage = storage
        self.bucket = storage.bucket_name
        self.client = storage.connection.meta.client

    def describe(self) -> str:
        endpoint = self.storage.endpoint_url or "AWS"
        return f"S3 s3://{self.bucket}/{self.storage.location} at {endpoint}"

    def key(self, path: str) -> str:
        return join(self.storage.location, path)

    def save(self, path: str, stream) -> None:
        """Streamed as a multipart upload: S3 shows the object only once every part has arrived."""
        from django.core.files import File

        if not path:
            raise invalid_path()
        with s3_errors(path):
            self.storage.save(path, File(stream, name=posixpath.basename(path)))

    def open(self, path: str) -> Download:
        try:
            with s3_errors(path):
                response = self.client.get_object(Bucket=self.bucket, Key=self.key(path))
        except MlflowError as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST" and self._is_folder(path):
                raise MlflowError.invalid(f"The artifact '{path}' is a directory.") from None
            raise
        return Download(chunks=response["Body"].iter_chunks(CHUNK_BYTES), size=response.get("ContentLength"))

    def _is_folder(self, path: str) -> bool:
        with s3_errors(path):
            page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.key(path) + "/", MaxKeys=1)
        return bool(page.get("KeyCount"))

    def listdir(self, path: str) -> list[FileInfo]:
        prefix = join(self.key(path)) + "/" if join(self.key(path)) else ""
        infos = []
        with s3_errors(path):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    infos.append(FileInfo(common["Prefix"][len(prefix):].rstrip("/"), True))
                for item in page.get("Contents", []):
                    name = item["Key"][len(prefix):]
                    if name:
                        infos.append(FileInfo(name, False, item["Size"]))
        return sorted(infos, key=lambda info: info.path)

    def delete(self, path: str) -> None:
        """The object, or everything under the path taken as a folder."""
        key = self.key(path)
        deleted = False
        with s3_errors(path):
            for prefix in (key, key + "/"):
                for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                    keys = [{"Key": item["Key"]} for item in page.get("Contents", [])
                            if item["Key"] == key or item["Key"].startswith(key + "/")]
                    if keys:
                        self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                        deleted = True
        if not deleted:
            raise not_found(path)

    # --- straight to S3, for clients that can reach it ------------------------------------------

    def create_multipart_upload(self, path: str, num_parts: int) -> dict:
        key = self.key(path)
        expires = settings.MLFLOW_PRESIGNED_URL_EXPIRATION
        with s3_errors(path):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            credentials = [
                {
                    "url": self.client.generate_presigned_url(
                        "upload_part", ExpiresIn=expires,
                        Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
                    ),
                    "part_number": number,
                    "headers": {},
                }
                for number in range(1, num_parts + 1)
            ]
        return {"upload_id": upload_id, "credentials": credentials}

    def complete_multipart_upload(self, path: str, upload_id: str, parts: list[dict]) -> None:
        ordered = sorted(({"PartNumber": p["part_number"], "ETag": p["etag"]} for p in parts), key=lambda p: p["PartNumber"])
        with s3_errors(path):
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key(path), UploadId=upload_id, MultipartUpload={"Parts": ordered}
            )

    def abort_multipart_upload(self, path: str, upload_id: str) -> None:
        with s3_errors(path):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key(path), UploadId=upload_id)

    def presigned_download(self, path: str) -> dict:
        key = self.key(path)
        with s3_errors(path):  # a listing, not head_object: its errors say "no such bucket", not a bare 404
            found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1).get("Contents", [])
            if not found or found[0]["Key"] != key:
                raise not_found(path)
            size = found[0]["Size"]
            url = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=settings.MLFLOW_PRESIGNED_URL_EXPIRATION
            )
        return {"url": url, "headers": {}, "file_size": size}


@contextmanager
def s3_errors(path: str):
    """S3's failures as MLflow errors that say what happened; nothing hangs past botocore's timeouts."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    try:
        yield
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchKey", "404", "NotFound"}:
            raise not_found(path) from None
        if code in {"NoSuchUpload"}:
            raise MlflowError.not_found(f"No multipart upload in progress for '{path}'.") from None
        if code in {"SlowDown", "ServiceUnavailable", "503", "RequestTimeout"}:
            raise MlflowError(f"The artifact store is busy: {code}.", "TEMPORARILY_UNAVAILABLE") from None
        raise MlflowError(f"The artifact store refused the request for '{path}': {code} "
                          f"{err.response.get('Error', {}).get('Message', '')}".strip(), "INTERNAL_ERROR") from None
    except NoCredentialsError:
        raise MlflowError("The artifact store has no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
                          "INTERNAL_ERROR") from None
    except (EndpointConnectionError, BotoCoreError) as err:
        raise MlflowError(f"The artifact store is unreachable: {err}", "TEMPORARILY_UNAVAILABLE") from None


@functools.cache
def artifact_store() -> LocalArtifactStore | S3ArtifactStore:
    storage = storages["artifacts"]
    if isinstance(storage, FileSystemStorage):
        return LocalArtifactStore(storage)
    return S3ArtifactStore(storage)


@receiver(setting_changed)
def forget_store(*, setting, **kwargs):
    if setting in {"STORAGES", "MLFLOW_ARTIFACTS_DESTINATION"}:
        artifact_store.cache_clear()
