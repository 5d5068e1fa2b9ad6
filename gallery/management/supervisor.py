"""Keeping `make run`'s children alive: a worker or web server that dies is started again.

A crash loop (a child that keeps exiting at once) stops everything instead of spinning.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RESTARTS_PER_WINDOW = 5
WINDOW_SECONDS = 60.0


class CrashLoop(RuntimeError):
    """A child exited too often in a short time; restarting it again would only spin."""


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        commands: dict[str, list[str]],
        *,
        env: dict[str, str],
        say: Callable[[str], None],
    ) -> None:
        self.children = [Child(name, command) for name, command in commands.items()]
        self.env = env
        self.say = say

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def check(self) -> list[str]:
        """Restart the children that exited; returns their names."""
        restarted = []
        for child in self.children:
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                continue
            now = time.monotonic()
            child.restarts = [t for t in child.restarts if now - t < WINDOW_SECONDS] + [now]
            if len(child.restarts) > RESTARTS_PER_WINDOW:
                raise CrashLoop(
                    f"{child.name} exited {len(child.restarts)} times within "
                    f"{WINDOW_SECONDS:.0f} s (last exit code {code}); stopping."
                )
            self.say(f"{child.name} exited with code {code}; starting it again.")
            self._spawn(child)
            restarted.append(child.name)
        return restarted

    def stop(self, timeout: float = 20.0) -> None:
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()

    def _spawn(self, child: Child) -> None:
        # Own session: Ctrl-C reaches only the supervisor, which then stops children in order.
        child.process = subprocess.Popen(child.command, env=self.env, start_new_session=True)
