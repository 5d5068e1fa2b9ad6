"""Restores: a backup (archive.services.backup) into an empty database, and its files into this
deployment's MEDIA_ROOT, SEEDBANK_MODELS_DIR and SEEDBANK_SIGNING_DIR.

Nothing is written where it counts until every file has been read and matched its manifest
digest: the bundle is unpacked into a staging folder beside the media, the database restored in
one transaction (a failure leaves it empty), and only then are the files moved into place and
the rows mended (what the backup saw change after its dump, and model paths that now live
elsewhere). Row updates use the table and column names the backup recorded, because they run
before `migrate` brings an older dump up to this code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from archive.postgres import pg_restore, pg_tool
from archive.services.backup import SIGNING_PREFIX, Progress, table_counts
from engine.bundle import bundle_extract, manifest_mismatches, manifest_read
from engine.resources import file_sha256
from search.services import hnsw_build_memory_mb


class RestoreRefused(Exception):
    """The restore did not start, or stopped before writing anything; the message says why."""


@dataclass
class RestoreResult:
    manifest: dict[str, Any]
    tables: dict[str, int]
    files: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Move:
    staged: Path
    destination: Path
    sha256: str


def backup_restore(
    *, source: Path, pg_bin: Path | None = None, progress: Progress | None = None
) -> RestoreResult:
    """Restore the backup at `source` into this deployment's (empty) database and folders."""
    started = time.monotonic()
    source = Path(source).resolve()
    if not source.is_file():
        raise RestoreRefused(f"No backup at {source}")
    _require_empty_database()
    media = Path(settings.MEDIA_ROOT)
    media.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=media.parent, prefix=".seedbank-restore-") as work:
        staged = Path(work)
        total = 0 if source.name.endswith(".gz") else source.stat().st_size
        advance = (lambda n: progress("reading", n, total)) if progress else None
        entries = list(bundle_extract(source, staged, advance=advance))
        manifest = manifest_read(staged)
        if problems := manifest_mismatches(manifest["files"], entries):
            raise RestoreRefused(
                f"{len(problems)} file(s) in {source.name} do not match its manifest; nothing "
                "was restored:\n" + "\n".join(problems)
            )
        moves, paths, warnings = _placement(manifest, staged)
        clashes = [m.destination for m in moves if _differs(m.destination, m.sha256)]
        if clashes:
            raise RestoreRefused(
                f"{len(clashes)} file(s) already exist with other bytes; nothing was restored "
                "(restore into empty folders):\n" + "\n".join(str(path) for path in clashes)
            )
        if progress:
            progress("database restore", 0, 0)
        _restore_database(staged / manifest["database"]["file"], manifest, pg_bin)
        if any(name.startswith(SIGNING_PREFIX) for name in (e["name"] for e in manifest["files"])):
            # Made private before a key goes in, not after.
            Path(settings.SEEDBANK_SIGNING_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
        for move in moves:
            if not move.destination.exists():
                move.destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(move.staged, move.destination)
        _protect_signing_dir()
        _mend_rows(manifest, paths)
    tables = table_counts()
    warnings += [
        f"{table}: {count} rows, the backup had {manifest['database']['tables'][table]}"
        for table, count in tables.items()
        if table in manifest["database"]["tables"]
        and count != manifest["database"]["tables"][table]
    ]
    warnings += [
        f"{item['name']} was not in the backup ({item['reason']}; {item['row'] or 'no row'})"
        for item in manifest["missing"]
    ]
    return RestoreResult(
        manifest=manifest,
        tables=tables,
        files=len(moves),
        bytes=sum(m.destination.stat().st_size for m in moves),
        warnings=warnings,
        seconds=time.monotonic() - started,
    )


def _require_empty_database() -> None:
    tables = connection.introspection.table_names()
    if tables:
        raise RestoreRefused(
            f"The database {connection.settings_dict['NAME']!r} is not empty ({len(tables)} "
            f"tables, e.g. {', '.join(sorted(tables)[:3])}). A restore goes into an empty "
            "database: create one (createdb) and point DATABASE_URL at it, or restore into an "
            "empty SEEDBANK_VAR_DIR."
        )


def _differs(path: Path, sha256: str) -> bool:
    return path.exists() and (not path.is_file() or file_sha256(path) != sha256)


def _placement(
    manifest: dict[str, Any], staged: Path
) -> tuple[list[_Move], list[tuple[dict[str, Any], str]], list[str]]:
    """Where each staged file goes, the model / resource rows whose path changes, and warnings
    (shipped models this checkout lacks)."""
    media = Path(settings.MEDIA_ROOT)
    models_root = Path(settings.SEEDBANK_MODELS_DIR)
    shipped_root = Path(settings.SEEDBANK_SHIPPED_MODELS_DIR)
    digests = {item["name"]: item["sha256"] for item in manifest["files"]}
    moves = [
        _Move(staged / name, media / name.removeprefix("media/"), sha256)
        for name, sha256 in digests.items()
        if name.startswith("media/")
    ]
    signing = Path(settings.SEEDBANK_SIGNING_DIR)
    for name, sha256 in digests.items():
        if name.startswith(SIGNING_PREFIX):
            destination = signing / name.removeprefix(SIGNING_PREFIX)
            if not _inside(destination, signing):
                raise RestoreRefused(f"{name}: {destination} is outside {signing}")
            moves.append(_Move(staged / name, destination, sha256))
    paths: list[tuple[dict[str, Any], str]] = []
    warnings: list[str] = []
    for item in [*manifest["models"], *manifest["resources"]]:
        if item["place"] == "shipped":
            home = shipped_root / item["relative"]
            if not home.exists():
                revision = manifest["seedbank"].get("git_revision") or "the backup's revision"
                warnings.append(f"{item['label']}: shipped, but {home} is not in this checkout "
                                f"(check out {revision})")  # fmt: skip
        elif item["place"] == "models-dir":
            home = models_root / item["relative"]
        else:  # registered in place outside the models folder: brought home, by row id
            home = models_root / "restored" / f"{item['pk']}-{item['relative']}"
        if item["place"] != "shipped" and not _inside(home, models_root):
            raise RestoreRefused(f"{item['label']}: {home} is outside {models_root}")
        if str(home) != item["path"]:
            paths.append((item, str(home)))
        if "stored" not in item:
            continue
        prefix = f"{item['stored']}/"
        for name, sha256 in digests.items():
            if name.startswith(prefix):
                inside = name.removeprefix(prefix)
                destination = home / inside if item["layout"] == "folder" else home
                moves.append(_Move(staged / name, destination, sha256))
    return moves, paths, warnings


def _protect_signing_dir() -> None:
    """The restored signing folder as the keyring makes it: private keys 0600, folders 0700."""
    root = Path(settings.SEEDBANK_SIGNING_DIR)
    if not root.is_dir():
        return
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        folder.chmod(0o700)
    for key in root.rglob("key.pem"):
        key.chmod(0o600)


def _inside(path: Path, root: Path) -> bool:
    """Whether `path` stays under `root` (a manifest naming ../ would not)."""
    return path.resolve().is_relative_to(root.resolve()) and path.resolve() != root.resolve()


def _restore_database(dump: Path, manifest: dict[str, Any], pg_bin: Path | None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version_num')::int")
        (version_num,) = cursor.fetchone()
    # The HNSW graph is rebuilt from the rows: give it the memory a rebuild would get.
    vectors = int(manifest["database"]["tables"].get("search_imageembedding", 0))
    pg_restore(
        tool=pg_tool("pg_restore", server_version_num=version_num, bin_dir=pg_bin),
        database=connection.settings_dict,
        dump=dump,
        index_memory_mb=hnsw_build_memory_mb(vectors),
        workers=max(0, (os.cpu_count() or 2) - 1),
    )


def _mend_rows(manifest: dict[str, Any], paths: list[tuple[dict[str, Any], str]]) -> None:
    """Apply what the backup saw change after its dump, and the new homes of model files."""
    quote = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        for fixup in manifest["fixups"]:
            columns = list(fixup["columns"])
            assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
            cursor.execute(
                f"UPDATE {quote(fixup['table'])} SET {assignments} "
                f"WHERE {quote(fixup['pk_column'])} = %s",
                [*(fixup["columns"][column] for column in columns), fixup["pk"]],
            )
        for item, path in paths:
            cursor.execute(
                f"UPDATE {quote(item['table'])} SET {quote(item['column'])} = %s "
                f"WHERE {quote(item['pk_column'])} = %s",
                [path, item["pk"]],
            )
