"""The UI bundle on disk: taken from one MLflow release's wheel into a folder, once per release, atomically.

The bundle is MLflow's `mlflow/server/js/build/` (index.html, static/..., the telemetry worker). Only that folder
is taken, so the runtime image carries the UI without the ML stack the `mlflow` package depends on.
"""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from whitenoise.compress import Compressor

BUILD_IN_WHEEL = "mlflow/server/js/build/"
VERSION_FILE = "VERSION"  # written last: a folder holding it holds a complete bundle of that release


class FetchError(Exception):
    """The bundle could not be put in place; the message says why and what to do."""


def installed_version(folder: Path) -> str | None:
    """The MLflow release whose bundle `folder` holds, or None when it holds no complete bundle."""
    try:
        version = (folder / VERSION_FILE).read_text().strip()
    except OSError:
        return None
    return version if version and (folder / "index.html").is_file() else None


def fetch(dest: Path, version: str) -> str:
    """Puts MLflow `version`'s bundle in `dest`; says how: "present" (nothing to do), "copied" (from the mlflow
    package installed here, when it is that release) or "downloaded" (the wheel, with pip)."""
    if installed_version(dest) == version:
        return "present"
    if dest.exists() and not (dest / VERSION_FILE).is_file() and any(dest.iterdir()):
        # The folder is swapped out and deleted below: never do that to a folder that is not a bundle of ours.
        raise FetchError(f"{dest} exists and holds no MLflow UI bundle ({VERSION_FILE} missing): "
                         "empty it or choose another --dest.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Staged beside the destination, so that the final renames stay on one file system.
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}-", dir=dest.parent) as work:
        staging = Path(work) / "ui"
        local_build = _installed_build(version)
        if local_build is not None:
            shutil.copytree(local_build, staging)
            how = "copied"
        else:
            _extract(_download_wheel(version, Path(work) / "wheel"), staging)
            how = "downloaded"
        if not (staging / "index.html").is_file():
            raise FetchError(f"mlflow {version} has no UI bundle ({BUILD_IN_WHEEL}index.html missing).")
        _precompress(staging)
        (staging / VERSION_FILE).write_text(f"{version}\n")
        if dest.exists():
            os.replace(dest, Path(work) / "previous")  # deleted with the temporary folder
        os.replace(staging, dest)
    return how


def _installed_build(version: str) -> Path | None:
    """The bundle of the mlflow package installed in this environment (the test extras), if it is `version`."""
    try:
        distribution = importlib.metadata.distribution("mlflow")
    except importlib.metadata.PackageNotFoundError:
        return None
    build = Path(distribution.locate_file(BUILD_IN_WHEEL))
    return build if distribution.version == version and (build / "index.html").is_file() else None


def _download_wheel(version: str, folder: Path) -> Path:
    """The mlflow wheel of `version`, alone (no dependencies), from the index pip is configured with."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet",
               "--disable-pip-version-check", "--dest", str(folder), f"mlflow=={version}"]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(folder.glob(f"mlflow-{version}-*.whl"))
    if result.returncode != 0 or not wheels:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise FetchError(f"pip could not download mlflow=={version}: {' / '.join(detail) or 'no wheel'}")
    return wheels[0]


def _extract(wheel: Path, staging: Path) -> None:
    """Only the bundle's files, each checked to stay inside `staging`."""
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            if member.is_dir() or not member.filename.startswith(BUILD_IN_WHEEL):
                continue
            relative = PurePosixPath(member.filename[len(BUILD_IN_WHEEL):])
            if relative.is_absolute() or ".." in relative.parts or "\\" in member.filename:
                raise FetchError(f"{wheel.name} holds an unsafe path: {member.filename!r}")
            target = staging.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out)


def _precompress(staging: Path) -> None:
    """Gzip siblings that whitenoise sends to browsers accepting them: the scripts shrink about fourfold."""
    compressor = Compressor(use_brotli=False, quiet=True)  # brotli is not a dependency
    for path in [p for p in staging.rglob("*") if p.is_file()]:
        if compressor.should_compress(path.name):
            compressor.compress(str(path))
