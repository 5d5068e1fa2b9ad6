"""Backups: one tar holding a consistent database dump, the media, the model files that live
nowhere else, the site's signing credentials, and a manifest of every file's size and sha256
(engine.bundle).

Order matters while the site keeps serving. The dump comes first, from a snapshot that this
process exports and reads its file references under: every row in the dump is known here.
Files are copied after, so each row's file is either copied or known to have gone since the
dump. Files only go away when a row stops naming them (eviction empties image_file; a restored
record writes new previews): for those rows the manifest carries their file columns as they are
now, with the new files, and a restore applies them. Files written after the dump that no row
in it names belong to rows the dump does not have: they are left out.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from archive.postgres import pg_dump, pg_tool, tool_version
from engine.bundle import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    BundleError,
    Entry,
    bundle_add_file,
    bundle_add_json,
    bundle_open,
    entry_dict,
)
from generator.selectors.stored_files import (
    MediaReference,
    StoredFile,
    media_file_state,
    media_references,
    model_folders,
    resource_files,
)

DUMP_NAME = "database.dump"
SIGNING_PREFIX = "signing/"  # the site's signing credentials, in the bundle
# (phase, bytes just done, bytes in the phase): the command draws it.
Progress = Callable[[str, int, int], None]


@dataclass
class Snapshot:
    """What one database snapshot holds: the dump, the files its rows name, the counts."""

    dump: Path
    taken_at: datetime.datetime
    server_version: str
    pg_dump_version: str
    references: dict[str, tuple[str, int, str]]  # name under MEDIA_ROOT → (table, pk, column)
    models: list[StoredFile]
    resources: list[StoredFile]
    tables: dict[str, int]
    migrations: dict[str, str]


@dataclass
class BackupResult:
    path: Path
    files: int
    bytes: int
    tables: dict[str, int]
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0


def backup_create(
    *, out: Path, pg_bin: Path | None = None, progress: Progress | None = None
) -> BackupResult:
    """Write a backup to `out` (a .tar; gzipped when the name ends in .gz), never half of one:
    it is written beside as `<out>.partial` and renamed when complete."""
    started = time.monotonic()
    out = Path(out).resolve()
    if out.exists():
        raise BundleError(f"{out} exists already; a backup never overwrites another.")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".seedbank-backup-") as work:
        if progress:
            progress("database dump", 0, 0)
        snapshot = backup_snapshot(dump=Path(work) / DUMP_NAME, pg_bin=pg_bin)
        try:
            with bundle_open(partial, gzip=out.name.endswith(".gz")) as tar:
                manifest = _write_files(tar, snapshot, progress)
                bundle_add_json(tar, MANIFEST, manifest)
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    return BackupResult(
        path=out,
        files=len(manifest["files"]),
        bytes=sum(item["size"] for item in manifest["files"]),
        tables=snapshot.tables,
        missing=[item["name"] for item in manifest["missing"]],
        seconds=time.monotonic() - started,
    )


def backup_snapshot(*, dump: Path, pg_bin: Path | None = None) -> Snapshot:
    """Dump the database from one exported snapshot, and read under that same snapshot the
    files its rows name and how many rows each table has."""
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute(
            "SELECT pg_export_snapshot(), now(), current_setting('server_version_num')::int, "
            "current_setting('server_version')"
        )
        snapshot_id, taken_at, version_num, server_version = cursor.fetchone()
        tool = pg_tool("pg_dump", server_version_num=version_num, bin_dir=pg_bin)
        pg_dump(tool=tool, database=connection.settings_dict, out=dump, snapshot=snapshot_id)
        references = {ref.name: (ref.table, ref.pk, ref.column) for ref in media_references()}
        tables = table_counts()
        cursor.execute("SELECT app, max(name) FROM django_migrations GROUP BY app ORDER BY app")
        migrations = dict(cursor.fetchall())
        return Snapshot(
            dump=dump,
            taken_at=taken_at,
            server_version=str(server_version),
            pg_dump_version=tool_version(tool),
            references=references,
            models=model_folders(),
            resources=resource_files(),
            tables=tables,
            migrations=migrations,
        )


def table_counts() -> dict[str, int]:
    """Rows in each of this project's tables (every installed app's)."""
    quote = connection.ops.quote_name
    counts = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.django_table_names(only_existing=True)):
            cursor.execute(f"SELECT count(*) FROM {quote(table)}")
            counts[table] = int(cursor.fetchone()[0])
    return counts


# --- files ------------------------------------------------------------------------------------


def _write_files(tar: Any, snapshot: Snapshot, progress: Progress | None) -> dict[str, Any]:
    media = Path(settings.MEDIA_ROOT)
    plan = [(snapshot.dump, DUMP_NAME)]
    plan += [(media / name, f"media/{name}") for name in _media_to_copy(media, snapshot)]
    models, model_files = _stored_plan(snapshot.models, "models", folders=True)
    resources, resource_files_ = _stored_plan(snapshot.resources, "resources", folders=False)
    plan += model_files + resource_files_
    plan += _signing_files()
    owners = {
        f"{item['stored']}/": item["label"] for item in models + resources if "stored" in item
    }
    total = sum(_size(path) for path, _ in plan)
    advance = (lambda n: progress("files", n, total)) if progress else None

    entries: dict[str, Entry] = {}
    gone: list[str] = []
    for path, name in plan:
        try:
            entries[name] = bundle_add_file(tar, path, name, advance=advance)
        except FileNotFoundError:
            gone.append(name)
    fixups, missing = _after_the_dump(tar, snapshot, gone, entries, advance, owners)
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created_at": snapshot.taken_at.isoformat(),
        "seedbank": _seedbank_version(),
        "database": {
            "file": DUMP_NAME,
            "server_version": snapshot.server_version,
            "pg_dump": snapshot.pg_dump_version,
            "tables": snapshot.tables,
            "migrations": snapshot.migrations,
        },
        "media_root": str(media),
        "signing_dir": str(settings.SEEDBANK_SIGNING_DIR),
        "models_dir": str(settings.SEEDBANK_MODELS_DIR),
        "models": models,
        "resources": resources,
        "fixups": fixups,
        "missing": missing,
        "files": [entry_dict(entry) for entry in entries.values()],
    }


def _signing_files() -> list[tuple[Path, str]]:
    """The site's signing credentials (SEEDBANK_SIGNING_DIR): the current key, and the chains of
    retired ones. Without them a restored site signs with a new key, and the pictures it signed
    before no longer read as its own. Not the lock file or a half-made folder (dot names)."""
    root = Path(settings.SEEDBANK_SIGNING_DIR)
    return [
        (path, f"{SIGNING_PREFIX}{path.relative_to(root).as_posix()}")
        for path in _walk(root)
        if not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]


def _media_to_copy(media: Path, snapshot: Snapshot) -> list[str]:
    """The files the dump's rows name, and files no row names that were there before the dump
    (a backup keeps what the disk held); not the files of rows committed after it."""
    before = snapshot.taken_at.timestamp()
    names = set(snapshot.references)
    for path in _walk(media):
        name = path.relative_to(media).as_posix()
        if name not in names and _mtime(path) < before:
            names.add(name)
    return sorted(names)


def _walk(root: Path) -> Iterator[Path]:
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for file in sorted(files):
            yield Path(folder) / file


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _stored_plan(
    stored: list[StoredFile], prefix: str, *, folders: bool
) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
    """Model folders / resource files to copy, and how each is described in the manifest.

    Shipped ones (in the repository's models/) are listed with their digest, not copied: the
    checkout of the revision the manifest names has them, byte for byte. Everything else is
    copied, the tiny and demo models under var/models included: a rebuild is byte-identical
    only with the same torch and diffusers, and they are a few MB.
    """
    shipped_root = Path(settings.SEEDBANK_SHIPPED_MODELS_DIR).resolve()
    models_root = Path(settings.SEEDBANK_MODELS_DIR).resolve()
    described: list[dict[str, Any]] = []
    plan: list[tuple[Path, str]] = []
    for item in stored:
        path = Path(item.path).resolve()
        info: dict[str, Any] = {
            "table": item.table,
            "pk_column": item.pk_column,
            "pk": item.pk,
            "column": item.column,
            "label": item.label,
            "path": item.path,
            "digest": item.digest,
            "layout": "folder" if folders else "file",
        }
        if path.is_relative_to(shipped_root):
            info |= {"place": "shipped", "relative": path.relative_to(shipped_root).as_posix()}
        else:
            inside = path.is_relative_to(models_root)
            info["place"] = "models-dir" if inside else "external"
            info["relative"] = path.relative_to(models_root).as_posix() if inside else path.name
            info["stored"] = f"{prefix}/{item.pk}"
            files = sorted(_walk(path)) if folders and path.is_dir() else [path]
            if folders and not path.is_dir():
                files = [path / "model_index.json"]  # reported as missing below
            for file in files:
                relative = file.relative_to(path).as_posix() if folders else file.name
                plan.append((file, f"{prefix}/{item.pk}/{relative}"))
        described.append(info)
    return described, plan


def _after_the_dump(
    tar: Any,
    snapshot: Snapshot,
    gone: list[str],
    entries: dict[str, Entry],
    advance: Callable[[int], None] | None,
    owners: dict[str, str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """For media that went away between the dump and the copy: the rows' file columns as they
    are now (with their new files) where a row moved on; the rest, listed as missing."""
    media = Path(settings.MEDIA_ROOT)
    fixups: dict[tuple[str, int], dict[str, Any]] = {}
    missing = []
    for name in gone:
        reference = snapshot.references.get(name.removeprefix("media/"))
        if not name.startswith("media/") or reference is None:
            # A model's or resource's file, or a stray deleted meanwhile: no row to mend.
            owner = next(
                (label for prefix, label in owners.items() if name.startswith(prefix)), None
            )
            missing.append({"name": name, "row": owner, "reason": "not on disk"})
            continue
        table, pk, column = reference
        now = media_file_state(table=table, pk=pk)
        if now is None or now.files.get(column) == name.removeprefix("media/"):
            reason = "row deleted since the dump" if now is None else "not on disk"
            missing.append({"name": name, "row": _what(reference), "reason": reason})
            continue
        fixups[(table, pk)] = {
            "table": table,
            "pk_column": now.pk_column,
            "pk": pk,
            "columns": {**now.files, **now.others},
            "files": sorted(now.files),
        }
    for fixup in fixups.values():
        for column in fixup["files"]:
            value = fixup["columns"][column]
            member = f"media/{value}"
            if value and member not in entries:
                try:
                    entries[member] = bundle_add_file(tar, media / value, member, advance=advance)
                except FileNotFoundError:
                    row = f"{fixup['table']} {fixup['pk']} {column}"
                    missing.append({"name": member, "row": row, "reason": "gone while copying"})
    return list(fixups.values()), missing


def _what(reference: tuple[str, int, str] | None) -> str | None:
    return None if reference is None else MediaReference(*reference, name="").what


def _seedbank_version() -> dict[str, str]:
    base = Path(settings.BASE_DIR)
    try:
        version = tomllib.loads((base / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, ValueError):
        version = ""
    try:
        revision = subprocess.run(
            ["git", "-C", str(base), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        revision = ""  # not a checkout (an installed release)
    return {"version": version, "git_revision": revision}
