"""`make run` keeps serving when a child dies: the supervisor starts it again (real processes)."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from gallery.management import supervisor
from gallery.management.supervisor import CrashLoop, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
QUITTER = [sys.executable, "-c", "raise SystemExit(3)"]


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


def test_a_crash_loop_stops_instead_of_spinning(monkeypatch) -> None:
    monkeypatch.setattr(supervisor, "RESTARTS_PER_WINDOW", 2)
    children = Supervisor({"web": QUITTER}, env=dict(os.environ), say=lambda line: None)
    children.start()
    with pytest.raises(CrashLoop):
        for _ in range(10):
            children.children[0].process.wait(timeout=10)
            children.check()
    children.stop(timeout=5)
