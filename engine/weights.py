"""Pinning a model folder by a digest of its files (Django-free, no ML imports).

A record names its model by this digest: configs move pixels as weights do, so every file
counts. Digesting a multi-GB checkpoint takes seconds, so `files_digest` remembers the answer per
file listing (names, sizes, mtimes) for the life of the process.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20
MODEL_INDEX = "model_index.json"

_listing_digests: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


def weights_digest(path: Path) -> str:
    """sha256 over every file's relative path and bytes (configs move pixels as weights do)."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(_files(root), key=lambda f: f.relative_to(root).as_posix()):
        name = file.relative_to(root).as_posix().encode()
        # Length-prefix name and content so no two different trees can hash the same stream.
        digest.update(b"%d:%s%d:" % (len(name), name, file.stat().st_size))
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def files_digest(path: Path, *, marker: str = MODEL_INDEX) -> str | None:
    """The digest of a model folder as it is now (cached per listing); None when its marker file
    (a diffusers folder's model_index.json by default) is missing."""
    if not (path / marker).is_file():
        return None
    listing = tuple(
        sorted(
            (str(file.relative_to(path)), file.stat().st_size, file.stat().st_mtime_ns)
            for file in _files(path)
        )
    )
    key = (str(path), listing)
    if key not in _listing_digests:
        _listing_digests[key] = weights_digest(path)
    return _listing_digests[key]


def _files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        raise FileNotFoundError(f"No model folder at {root}")
    return (p for p in root.rglob("*") if p.is_file())


def open_permissions(root: Path) -> None:
    """Give a freshly built model folder the umask's usual modes: mkdtemp makes folders 0700 and
    some savers write 0600 files, but workers running as other users (a web process, a CPU
    worker) must read the model."""
    umask = os.umask(0)
    os.umask(umask)
    for folder, _, files in os.walk(root):
        os.chmod(folder, 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666 & ~umask)
