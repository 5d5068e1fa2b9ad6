"""Backup bundles: one tar whose files are hashed as they stream in and out (Django-free).

A bundle is a plain tar (gzip only when its name ends in .gz: PNGs, WebP previews, safetensors
and pg_dump's custom format are compressed already, so gzip would cost a core for a few per
cent). Every file is read once, in chunks, and its sha256 taken on the way into the tar; the
manifest that lists them is the last member, so it can name digests without a second pass.
Reading it back checks every member against those digests before anything is put in place.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

MANIFEST = "manifest.json"
FORMAT = "seedbank-backup"
FORMAT_VERSION = 1
_CHUNK = 1 << 20

# Called with the number of bytes just copied.
Advance = Callable[[int], None]


class BundleError(Exception):
    """A bundle that cannot be read or does not match its manifest; the message says which."""


@dataclass(frozen=True)
class Entry:
    """One member: its name in the tar, its size and the sha256 of its bytes."""

    name: str
    size: int
    sha256: str


class _Hashing:
    """A read-only file object that hashes (and reports) what passes through it."""

    def __init__(self, raw: IO[bytes], advance: Advance | None) -> None:
        self.raw, self.advance = raw, advance
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        self.size += len(data)
        if self.advance is not None:
            self.advance(len(data))
        return data


def bundle_open(path: Path, *, gzip: bool = False) -> tarfile.TarFile:
    """A new bundle at `path`, gzipped or not. PAX headers: names of any length and files over
    8 GiB (a checkpoint can be)."""
    mode = "w:gz" if gzip else "w"
    return tarfile.open(path, mode, format=tarfile.PAX_FORMAT)  # type: ignore[call-overload,no-any-return]


def bundle_add_file(
    tar: tarfile.TarFile, source: Path, name: str, *, advance: Advance | None = None
) -> Entry:
    """Stream `source` into the bundle as `name`. The size is taken from the open file, so a
    file replaced meanwhile is stored whole or not at all (FileNotFoundError)."""
    with source.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        info = tarfile.TarInfo(_checked_name(name))
        info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o644
        reader = _Hashing(handle, advance)
        tar.addfile(info, reader)  # type: ignore[arg-type]  # reads exactly info.size bytes
    return Entry(name=info.name, size=reader.size, sha256=reader.digest.hexdigest())


def bundle_add_json(tar: tarfile.TarFile, name: str, data: dict[str, Any]) -> Entry:
    payload = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False).encode()
    info = tarfile.TarInfo(_checked_name(name))
    info.size, info.mode = len(payload), 0o644
    reader = _Hashing(io.BytesIO(payload), None)
    tar.addfile(info, reader)  # type: ignore[arg-type]
    return Entry(name=info.name, size=len(payload), sha256=reader.digest.hexdigest())


def bundle_extract(path: Path, into: Path, *, advance: Advance | None = None) -> Iterator[Entry]:
    """Write each member of the bundle under `into` (in one sequential read, so a .tar.gz is
    not decompressed twice), yielding what was written with the sha256 of its bytes. Names
    that would land outside `into`, links and devices are refused."""
    with tarfile.open(path, "r|*") as tar:
        for member in tar:
            if member.isdir():
                continue
            if not member.isfile():
                raise BundleError(f"{member.name}: not a regular file; a backup holds only files")
            target = into / _checked_name(member.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None  # a regular file always has one
            reader = _Hashing(source, advance)
            with target.open("wb") as out:
                while chunk := reader.read(_CHUNK):
                    out.write(chunk)
            yield Entry(name=member.name, size=reader.size, sha256=reader.digest.hexdigest())


def _checked_name(name: str) -> str:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts or "\\" in name:
        raise BundleError(f"{name!r}: a member name must be a relative path inside the bundle")
    return pure.as_posix()


def manifest_read(folder: Path) -> dict[str, Any]:
    """The manifest of an extracted bundle, after checking it is one this code can read."""
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise BundleError(
            f"No {MANIFEST} in the bundle: not a Seedbank backup, or cut short"
        ) from None
    except ValueError as error:
        raise BundleError(f"{MANIFEST} is not valid JSON: {error}") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{MANIFEST} is not a Seedbank backup manifest")
    if int(manifest.get("version", 0)) > FORMAT_VERSION:
        raise BundleError(
            f"This backup is format {manifest['version']}; this Seedbank reads up to "
            f"{FORMAT_VERSION}. Restore it with the release that made it."
        )
    return manifest


def manifest_mismatches(expected: list[dict[str, Any]], found: list[Entry]) -> list[str]:
    """What differs between the manifest's file list and the members actually read: one line
    per file, naming it (changed bytes, wrong size, missing, or not in the manifest)."""
    got = {entry.name: entry for entry in found if entry.name != MANIFEST}
    problems = []
    for item in expected:
        entry = got.pop(item["name"], None)
        if entry is None:
            problems.append(f"{item['name']}: missing from the bundle")
        elif entry.sha256 != item["sha256"] or entry.size != item["size"]:
            problems.append(
                f"{item['name']}: sha256 {entry.sha256} ({entry.size} bytes), the manifest "
                f"says {item['sha256']} ({item['size']} bytes)"
            )
    problems += [f"{name}: in the bundle but not in its manifest" for name in sorted(got)]
    return problems


def entry_dict(entry: Entry) -> dict[str, Any]:
    return asdict(entry)
