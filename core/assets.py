"""Where the third-party MediaPipe model bundle lives, and how to obtain it.

`face_landmarker.task` is never committed: `lipreader assets fetch` copies it from a local folder
or downloads it from MediaPipe's official address, verifying its SHA-256 either way.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

log = logging.getLogger("lipreader")

LANDMARKER_NAME = "face_landmarker.task"
LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
LANDMARKER_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
    + LANDMARKER_NAME
)
ENV_VAR = "LIPREADER_LANDMARKER"  # path to face_landmarker.task, overriding the lookup
FETCH_HINT = "run `lipreader assets fetch` (or `lipreader assets fetch --from DIR`)"


class AssetError(RuntimeError):
    """A required asset is missing or corrupt."""


def assets_dir() -> Path:
    """The `assets/` folder: beside the packages from source, inside the bundle when frozen."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "assets"
    return Path(__file__).resolve().parent.parent / "assets"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def landmarker_path(verify: bool = True) -> Path:
    """Path of a usable `face_landmarker.task`; raises AssetError with a one-line fix otherwise."""
    override = os.environ.get(ENV_VAR)
    path = Path(override) if override else assets_dir() / LANDMARKER_NAME
    # with the override set, fetching into assets/ changes nothing: the fix is the variable's value
    hint = f"set {ENV_VAR} to a {LANDMARKER_NAME} or unset it" if override else FETCH_HINT
    if path.is_dir():
        raise AssetError(f"landmark model {path} is a folder, not a file: {hint}")
    if not path.is_file():
        raise AssetError(f"landmark model {path} is missing: {hint}")
    if verify and path.stat().st_size > 0 and _checked_digest(path) != LANDMARKER_SHA256:
        raise AssetError(f"landmark model {path} is corrupt (SHA-256 mismatch): {hint}")
    if path.stat().st_size == 0:
        raise AssetError(f"landmark model {path} is empty: {hint}")
    return path


_digest_cache: dict[tuple[str, float, int], str] = {}


def _checked_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_mtime, stat.st_size)
    if key not in _digest_cache:
        _digest_cache[key] = sha256_of(path)
    return _digest_cache[key]


def fetch_landmarker(source_dir: Path | None = None, dest_dir: Path | None = None) -> Path:
    """Copy `face_landmarker.task` from `source_dir`, or download it, verify it, install it.

    The file is written to a temporary name and renamed only after its checksum matched.
    """
    dest_dir = dest_dir or assets_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / LANDMARKER_NAME
    fd, tmp_name = tempfile.mkstemp(prefix=".fetch-", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if source_dir is not None:
                src = Path(source_dir) / LANDMARKER_NAME
                if not src.is_file():
                    raise AssetError(f"no {LANDMARKER_NAME} in {source_dir}")
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, out)
            else:
                log.info("downloading %s", LANDMARKER_URL)
                try:
                    with urllib.request.urlopen(LANDMARKER_URL, timeout=60) as resp:
                        shutil.copyfileobj(resp, out)
                except OSError as e:
                    raise AssetError(f"cannot download {LANDMARKER_URL}: {e}") from e
        digest = sha256_of(tmp)
        if digest != LANDMARKER_SHA256:
            raise AssetError(f"{LANDMARKER_NAME} has SHA-256 {digest}, expected {LANDMARKER_SHA256}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
