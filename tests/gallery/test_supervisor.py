"""`make run` keeps serving when a child dies: the supervisor starts it again (real processes),
backs off from a child that keeps dying without stopping the others, says so in its status
file, and leaves nothing running when it stops, is killed, or was killed before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from gallery.management import supervisor
from gallery.management.stack_status import read_stack_status, stack_status_stale
from gallery.management.supervisor import Supervisor, backoff_seconds, stop_leftovers

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
QUITTER = [sys.executable, "-c", "raise SystemExit(3)"]
REPO = Path(__file__).resolve().parents[2]
# Generous: only a machine far busier than any CI gets near them.
WAIT_S = 30.0


def wait_for(condition: Callable[[], object], timeout: float = WAIT_S, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise AssertionError(f"not within {timeout} s: {condition}")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_killed_child_is_started_again_and_said_so() -> None:
    said: list[str] = []
    children = Supervisor(
        {"worker": SLEEPER, "web": SLEEPER}, env=dict(os.environ), say=said.append
    )
    children.start()
    try:
        worker = children.children[0].process
        assert worker is not None
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        assert children.check() == ["worker"]
        replacement = children.children[0].process
        assert replacement is not None and replacement.pid != worker.pid
        assert replacement.poll() is None and children.children[1].process.poll() is None
        assert said == [f"worker exited with code {-signal.SIGKILL}; starting it again."]
    finally:
        children.stop(timeout=5)
    assert all(c.process.poll() is not None for c in children.children)


def test_on_exit_runs_with_the_childs_name_and_its_errors_stop_nothing() -> None:
    calls: list[str] = []

    def failing(name: str) -> None:
        calls.append(name)
        raise RuntimeError("database away")

    said: list[str] = []
    children = Supervisor(
        {"gpu worker": SLEEPER, "web": SLEEPER},
        env=dict(os.environ),
        say=said.append,
        on_exit={"gpu worker": failing},
    )
    children.start()
    try:
        gpu, web = (child.process for child in children.children)
        gpu.kill()
        gpu.wait(timeout=10)
        assert children.check() == ["gpu worker"]
        assert calls == ["gpu worker"]
        assert "clean-up after its exit failed: RuntimeError('database away')" in said[0]
        web.kill()
        web.wait(timeout=10)
        assert children.check() == ["web"]
        assert calls == ["gpu worker"]  # only the child it was given for
    finally:
        children.stop(timeout=5)


def test_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    assert [backoff_seconds(level) for level in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_a_crash_loop_backs_off_that_child_only_and_the_status_file_says_so(
    monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(supervisor, "RESTARTS_PER_WINDOW", 2)
    monkeypatch.setattr(supervisor, "BACKOFF_FIRST_S", 0.2)
    monkeypatch.setattr(supervisor, "BACKOFF_MAX_S", 0.8)
    children = Supervisor(
        {"web": SLEEPER, "worker": QUITTER},
        env=dict(os.environ),
        say=lambda line: None,
        run_dir=tmp_path,
    )
    children.start()
    web = children.children[0].process
    pauses: list[float] = []
    try:
        deadline = time.monotonic() + WAIT_S
        level = 0
        while len(pauses) < 4 and time.monotonic() < deadline:
            children.check()
            if children.children[1].backoff_level != level:  # it exited, and a pause began
                level = children.children[1].backoff_level
                status = read_stack_status(tmp_path / "stack.json")
                assert status["children"]["worker"]["state"] == "backing off"
                pauses.append(status["children"]["worker"]["next_start_in_s"])
                assert status["children"]["web"]["state"] == "running"
            time.sleep(0.01)
        # 3 exits in the window (over 2): 0.2 s, then 0.4 s, 0.8 s, and no more than 0.8 s.
        assert pauses == pytest.approx([0.2, 0.4, 0.8, 0.8], abs=0.15)
        assert web.poll() is None and children.children[0].process is web

        status = read_stack_status(tmp_path / "stack.json")
        assert status is not None and not stack_status_stale(status)
        assert status["supervisor_pid"] == os.getpid()
        assert set(status) == {"updated", "supervisor_pid", "children"}
        assert status["children"]["web"] == {
            "state": "running",
            "pid": web.pid,
            "restarts_last_minute": 0,
            "last_exit_code": None,
            "next_start_in_s": None,
            "detail": status["children"]["web"]["detail"],
        }
        assert status["children"]["web"]["detail"].startswith(f"running (pid {web.pid}) for ")
        worker = status["children"]["worker"]
        assert worker["last_exit_code"] == 3 and worker["restarts_last_minute"] >= 6
        assert worker["state"] in ("running", "backing off")
        if worker["state"] == "backing off":
            assert worker["pid"] is None and "starting it again in" in worker["detail"]
        assert (tmp_path / "web.pid").read_text() == f"{web.pid}\n"
    finally:
        children.stop(timeout=5)
    assert web.poll() is not None
    assert not (tmp_path / "stack.json").exists() and not list(tmp_path.glob("*.pid"))


def test_a_child_that_stays_up_is_restarted_at_once_again(monkeypatch) -> None:
    monkeypatch.setattr(supervisor, "RESTARTS_PER_WINDOW", 0)
    monkeypatch.setattr(supervisor, "STABLE_AFTER_S", 0.5)
    children = Supervisor({"web": SLEEPER}, env=dict(os.environ), say=lambda line: None)
    children.start()
    try:
        child = children.children[0]
        child.process.kill()
        child.process.wait(timeout=10)
        children.check()
        assert child.backoff_level == 1 and child.next_start_at is not None
        wait_for(lambda: children.check())  # started again after its pause
        time.sleep(0.6)  # up longer than STABLE_AFTER_S
        children.check()
        assert child.backoff_level == 0
    finally:
        children.stop(timeout=5)


def test_the_status_file_is_rewritten_every_few_seconds(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(supervisor, "STATUS_EVERY_S", 0.2)
    children = Supervisor(
        {"web": SLEEPER}, env=dict(os.environ), say=lambda _: None, run_dir=tmp_path
    )
    children.start()
    try:
        first = read_stack_status(tmp_path / "stack.json")["updated"]
        time.sleep(0.3)
        children.check()
        assert read_stack_status(tmp_path / "stack.json")["updated"] > first
    finally:
        children.stop(timeout=5)


def test_an_unreadable_status_file_reads_as_none(tmp_path: Path) -> None:
    assert read_stack_status(tmp_path / "missing.json") is None
    (tmp_path / "stack.json").write_text('{"updated": 1')
    assert read_stack_status(tmp_path / "stack.json") is None
    assert stack_status_stale({"updated": time.time() - 60})
    assert not stack_status_stale({"updated": time.time()})


# What runstack does around its children, in a process a test can signal and kill.
RUNSTACK_LIKE = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from gallery.management.supervisor import (
        Supervisor, ignore_stop_signals, stop_on_signals,
    )

    stop_on_signals()
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    children = Supervisor(
        {"web": sleeper, "worker": sleeper}, env=dict(os.environ), say=print,
        run_dir=Path(sys.argv[1]),
    )
    try:
        children.start()
        children.run()
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        ignore_stop_signals()
        children.stop(timeout=10)
    """
)


@pytest.fixture
def runstack_like(tmp_path: Path):
    process = subprocess.Popen(
        [sys.executable, "-c", RUNSTACK_LIKE, str(tmp_path)],
        cwd=REPO,
        start_new_session=True,  # its own process group, as `make run` in a terminal
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    pids = {
        name: int(wait_for(lambda name=name: _read(tmp_path / f"{name}.pid")))
        for name in ("web", "worker")
    }
    yield process, pids
    if process.poll() is None:
        process.kill()
    for pid in pids.values():
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_to_the_process_group_stops_every_child(runstack_like, signum) -> None:
    process, pids = runstack_like
    os.killpg(process.pid, signum)
    output = process.communicate(timeout=WAIT_S)[0].decode()
    assert process.returncode == 0, output
    assert "stopping" in output
    assert all(gone(pid) for pid in pids.values())


def test_children_die_with_a_supervisor_killed_with_sigkill(runstack_like, tmp_path) -> None:
    process, pids = runstack_like
    process.kill()
    process.wait(timeout=WAIT_S)
    wait_for(lambda: all(gone(pid) for pid in pids.values()))
    # What it left says it is gone: the next start stops whatever the pid files still name.
    status = read_stack_status(tmp_path / "stack.json")
    assert status is not None and status["supervisor_pid"] == process.pid


def test_a_killed_child_is_running_again_within_a_second(runstack_like, tmp_path) -> None:
    _, pids = runstack_like
    os.kill(pids["web"], signal.SIGKILL)
    killed = time.monotonic()
    replacement = wait_for(
        lambda: (pid := _read(tmp_path / "web.pid")) and int(pid) != pids["web"] and int(pid)
    )
    # CHECK_EVERY_S (0.2 s) by design; generous for a busy machine.
    assert time.monotonic() - killed < 3.0
    assert psutil.Process(replacement).is_running()
    assert psutil.Process(pids["worker"]).is_running()


def test_leftovers_named_by_pid_files_are_stopped_and_nothing_else(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    marked = [sys.executable, "-c", "import time; time.sleep(60)  # seedbank-leftover"]
    reused_pid = subprocess.Popen(marked, start_new_session=True)  # started after its file
    (run_dir / "reused.pid").write_text(f"{reused_pid.pid}\n")
    os.utime(run_dir / "reused.pid", (time.time() - 60, time.time() - 60))
    leftover = subprocess.Popen(marked, start_new_session=True)
    stranger = subprocess.Popen(SLEEPER, start_new_session=True)
    ours = subprocess.Popen(marked, start_new_session=True)
    time.sleep(0.05)  # the pid files are younger than the processes, as runstack writes them
    for name, process in {"web": leftover, "other": stranger, "redis": ours}.items():
        (run_dir / f"{name}.pid").write_text(f"{process.pid}\n")
    (run_dir / "dead.pid").write_text("999999999\n")
    said: list[str] = []
    try:
        stopped = stop_leftovers(
            run_dir, say=said.append, keep=[ours.pid], names=("seedbank-leftover",), timeout=10
        )
        assert stopped == [leftover.pid]
        assert gone(leftover.pid)
        assert said == [f"stopping web (pid {leftover.pid}), left running by an earlier start"]
        assert stranger.poll() is None and ours.poll() is None and reused_pid.poll() is None
        assert sorted(path.name for path in run_dir.iterdir()) == ["redis.pid"]
    finally:
        for process in (leftover, stranger, ours, reused_pid):
            process.kill()
            process.wait()
