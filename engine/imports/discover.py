"""What to read under the paths given to an import: files, folders and zips, by extension.

Images (.png .jpg .jpeg .webp) are read one file at a time; tables by format: .csv, .jsonl /
.ndjson (JSON Lines), .json (Lexica's JSON), .parquet (DiffusionDB's metadata). A zip is read
member by member (not nested zips), each member's declared size checked before it is
inflated, so a zip bomb is refused, not expanded; a table member is streamed (a line at a time,
like a table file), never held whole, and stops at the member limit whatever its header said.
Everything in sorted order: an interrupted import resumes over the same sequence.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from engine.imports.image_files import recipe_from_image
from engine.imports.source import RowRejected
from engine.imports.tables import (
    CELL_MAX_CHARS,
    LINE_MAX_CHARS,
    Rejected,
    Row,
    csv_rows,
    diffusiondb_rows,
    jsonl_rows,
    lexica_rows,
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
TABLE_SUFFIXES = {".csv", ".jsonl", ".ndjson", ".json", ".parquet"}


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int = 50_000_000
    max_pixels: int = 4096 * 4096
    max_member_bytes: int = 2_000_000_000  # a zip member, inflated (images: the smaller limit)
    max_cell_chars: int = CELL_MAX_CHARS
    max_line_chars: int = LINE_MAX_CHARS


class _MemberTooLarge(RowRejected):
    """A zip member inflated past its limit while it was read (its header said less)."""


def _size(count: int) -> str:
    return f"{count // 1_000_000} MB" if count >= 1_000_000 else f"{count:,} bytes"


def rows(
    paths: list[Path], *, mapping: Mapping[str, str] = {}, limits: Limits = Limits()
) -> Iterator[Row]:
    """Every row (image or table row) under `paths`, in a stable order."""
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                yield from _file_rows(child, str(child.relative_to(path.parent)), mapping, limits)
        elif path.is_file():
            yield from _file_rows(path, path.name, mapping, limits)
        else:
            yield Rejected(str(path), "no such file or folder")


def _file_rows(path: Path, name: str, mapping: Mapping[str, str], limits: Limits) -> Iterator[Row]:
    suffix = path.suffix.lower()
    if suffix == ".zip":
        yield from _zip_rows(path, name, mapping, limits)
    elif suffix in IMAGE_SUFFIXES:
        if path.stat().st_size > limits.max_image_bytes:
            yield Rejected(name, f"larger than {limits.max_image_bytes // 1_000_000} MB")
        else:
            yield _image_row(path.read_bytes(), name, limits)
    elif suffix == ".parquet":
        yield from _guarded(name, diffusiondb_rows(str(path), name))
    elif suffix in TABLE_SUFFIXES:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            yield from _guarded(name, _table_rows(suffix, handle, name, mapping, limits))
    # other files (thumbnails' .txt, .DS_Store…) are not sources: skipped silently


def _zip_rows(path: Path, name: str, mapping: Mapping[str, str], limits: Limits) -> Iterator[Row]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        yield Rejected(name, f"not a readable zip ({error})")
        return
    with archive:
        for member in sorted(archive.infolist(), key=lambda m: m.filename):
            suffix = Path(member.filename).suffix.lower()
            where = f"{name}/{member.filename}"
            if member.is_dir() or suffix not in IMAGE_SUFFIXES | TABLE_SUFFIXES:
                continue
            limit = limits.max_member_bytes
            if suffix in IMAGE_SUFFIXES:
                limit = min(limit, limits.max_image_bytes)
            if member.file_size > limit:
                yield Rejected(where, _too_large(limit))
                continue
            if suffix == ".parquet":
                yield Rejected(where, "parquet inside a zip: unzip it and import the file")
            elif suffix in IMAGE_SUFFIXES:
                try:
                    data = _read_member(archive, member, limit)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RowRejected) as error:
                    yield Rejected(where, f"cannot be read from the zip ({error})")
                    continue
                yield _image_row(data, where, limits)
            else:
                try:
                    handle = archive.open(member)
                except (zipfile.BadZipFile, OSError, NotImplementedError) as error:
                    yield Rejected(where, f"cannot be read from the zip ({error})")
                    continue
                with handle, _member_text(handle, limit) as text:
                    yield from _guarded(where, _table_rows(suffix, text, where, mapping, limits))


def _too_large(limit: int) -> str:
    return f"inflates to more than {_size(limit)} (the limit for one zip member)"


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int) -> bytes:
    """The member's bytes, never more than `limit` (a header may lie about the size)."""
    with archive.open(member) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _MemberTooLarge(_too_large(limit))
    return data


class _Capped(io.RawIOBase):
    """A zip member's inflated bytes, read as they are asked for, up to `limit`: one byte more
    raises _MemberTooLarge."""

    def __init__(self, handle: IO[bytes], limit: int) -> None:
        self._handle, self._left, self._limit = handle, limit, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._handle.read(min(len(buffer), self._left + 1))
        if len(data) > self._left:
            raise _MemberTooLarge(_too_large(self._limit))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def _member_text(handle: IO[bytes], limit: int) -> io.TextIOWrapper:
    """A table member as text, decoded as it is read (a BOM, as Excel writes, skipped)."""
    return io.TextIOWrapper(
        io.BufferedReader(_Capped(handle, limit)), encoding="utf-8-sig", newline=""
    )


def _image_row(data: bytes, name: str, limits: Limits) -> Row:
    try:
        return recipe_from_image(data, name, max_pixels=limits.max_pixels)
    except RowRejected as error:
        return Rejected(name, str(error).removeprefix(f"{name}: "))


def _table_rows(
    suffix: str, handle: IO[str], name: str, mapping: Mapping[str, str], limits: Limits
) -> Iterator[Row]:
    cells = {"max_cell": limits.max_cell_chars}
    if suffix == ".csv":
        return csv_rows(handle, name, mapping, **cells, max_line=limits.max_line_chars)
    if suffix == ".json":
        return lexica_rows(handle, name, **cells)
    return jsonl_rows(handle, name, mapping, **cells, max_line=limits.max_line_chars)


def _guarded(name: str, table: Iterator[Row]) -> Iterator[Row]:
    """A table that breaks part-way (not UTF-8, a truncated parquet, a zip member past its
    limit or corrupt) ends with one Rejected naming it; the rows read before stay read."""
    try:
        yield from table
    except _MemberTooLarge as error:
        yield Rejected(name, f"{error}; the rows before it are read")
    except (
        UnicodeDecodeError, OSError, ValueError, ImportError, zipfile.BadZipFile, zlib.error,
        EOFError,
    ) as error:  # fmt: skip
        yield Rejected(name, f"the file cannot be read further ({type(error).__name__}: {error})")
