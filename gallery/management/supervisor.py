"""Keeping `make run`'s children alive: a worker or web server that dies is started again.

A child that keeps exiting (more than RESTARTS_PER_WINDOW times in WINDOW_SECONDS) is started
again after a growing pause, 1 s, 2 s, 4 s … at most BACKOFF_MAX_S, until it stays up for
STABLE_AFTER_S; the other children, the site among them, are never stopped for it. What each
child is doing goes to a status file (stack_status.py) that the health page reads.

Children die with the supervisor, even when it is killed with SIGKILL (Linux: each asks the
kernel for SIGTERM when its parent goes, PR_SET_PDEATHSIG), and each one's pid is written to
`<run_dir>/<name>.pid`, so that a later start can stop whatever a killed one left behind.
With a log_dir, each child's output (stdout and stderr: Celery's banner, warnings, tracebacks)
goes to `<log_dir>/<name>.log` instead of the terminal, started afresh by each supervisor and
appended to by each restart.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psutil

from gallery.management.stack_status import STATUS_EVERY_S, STATUS_FILE, write_stack_status

RESTARTS_PER_WINDOW = 5
WINDOW_SECONDS = 60.0
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
# A child that stayed up this long is healthy again: its next exit restarts it at once.
STABLE_AFTER_S = 60.0
# How often the supervisor looks at its children: a killed web server is replaced this soon.
CHECK_EVERY_S = 0.2
# Ctrl-C, `kill` (systemd, container stop) and a closed terminal all mean "stop everything".
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# What a pid file left by `make run` may name: anything else is not ours (pid reused).
STACK_PROCESSES = ("celery", "gunicorn", "redis")

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


@dataclass
class Child:
    name: str
    command: list[str]
    on_exit: Callable[[str], object] | None = None
    pass_fds: tuple[int, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    exits: list[float] = field(default_factory=list)  # monotonic times, the last minute
    last_exit_code: int | None = None
    backoff_level: int = 0  # consecutive restarts made with a pause
    next_start_at: float | None = None  # monotonic; set while backing off
    log_path: Path | None = None  # where its output goes (None: this process's terminal)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    def __init__(
        self,
        commands: dict[str, list[str]],
        *,
        env: dict[str, str],
        say: Callable[[str], None],
        on_exit: dict[str, Callable[[str], object]] | None = None,
        pass_fds: dict[str, tuple[int, ...]] | None = None,
        run_dir: Path | None = None,
        log_dir: Path | None = None,
    ) -> None:
        """on_exit[name](name) runs when that child exits by itself (killed, crashed) before it
        is started again; its errors are said, never raised. pass_fds[name]: file descriptors
        that child inherits (a listening socket). With run_dir, the status file and the pid
        files are written there; with log_dir, each child's output goes to log_file(name)."""
        self.children = [
            Child(name, command, (on_exit or {}).get(name), (pass_fds or {}).get(name, ()))
            for name, command in commands.items()
        ]
        for child in self.children:
            child.log_path = None if log_dir is None else log_file(log_dir, child.name)
        self.env = env
        self.say = say
        self.run_dir = run_dir
        self._status_written = 0.0
        self._stopping = False

    def start(self) -> None:
        """Start every child. Call it, and check(), from the main thread: the kernel signals
        a child when the *thread* that started it ends."""
        for child in self.children:
            self._spawn(child)
        self._publish()

    def run(self) -> None:
        """Supervise until interrupted (KeyboardInterrupt, see stop_on_signals)."""
        while True:
            self.check()
            time.sleep(CHECK_EVERY_S)

    def check(self) -> list[str]:
        """Restart the children that exited or whose pause is over; returns their names."""
        started, changed = [], False
        now = time.monotonic()
        for child in self.children:
            if child.running:
                if child.backoff_level and now - child.started_at >= STABLE_AFTER_S:
                    child.backoff_level = 0
                continue
            if child.process is not None and child.next_start_at is None:
                self._exited(child, now)
                changed = True
            if child.next_start_at is not None and now >= child.next_start_at:
                self._spawn(child)
                started.append(child.name)
        if started or changed or time.monotonic() - self._status_written >= STATUS_EVERY_S:
            self._publish()
        return started

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every child, SIGKILL those still there after `timeout`; remove the status
        and pid files (nothing is left to describe)."""
        self._stopping = True
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for child in self.children:
            child.next_start_at = None
        if self.run_dir is not None:
            for child in self.children:
                pid_file(self.run_dir, child.name).unlink(missing_ok=True)
            (self.run_dir / STATUS_FILE).unlink(missing_ok=True)

    def status(self) -> dict[str, dict[str, Any]]:
        """Each child as the status file describes it (stack_status.py)."""
        now = time.monotonic()
        return {child.name: self._child_status(child, now) for child in self.children}

    def _exited(self, child: Child, now: float) -> None:
        assert child.process is not None
        code = child.process.returncode
        child.last_exit_code = code
        if now - child.started_at >= STABLE_AFTER_S:
            child.backoff_level = 0
        child.exits = [t for t in child.exits if now - t < WINDOW_SECONDS] + [now]
        if child.on_exit is not None:
            try:
                child.on_exit(child.name)
            except Exception as exc:  # noqa: BLE001 - a failed clean-up must not stop the rest
                self.say(f"{child.name}: clean-up after its exit failed: {exc!r}")
        if child.backoff_level or len(child.exits) > RESTARTS_PER_WINDOW:
            child.backoff_level += 1
            pause = backoff_seconds(child.backoff_level)
            child.next_start_at = now + pause
            self.say(
                f"{child.name} exited with code {code}, {len(child.exits)} times in the last "
                f"{WINDOW_SECONDS:.0f} s; starting it again in {pause:.0f} s."
            )
        else:
            child.next_start_at = now
            self.say(f"{child.name} exited with code {code}; starting it again.")
        if child.log_path is not None:
            self.say(f"{child.name}: its output is in {child.log_path}")

    def _spawn(self, child: Child) -> None:
        output = _open_log(child)
        try:
            child.process = spawn_tied(
                child.command, env=self.env, pass_fds=child.pass_fds, output=output
            )
        finally:
            if output is not None:
                output.close()  # the child has its own copy of the descriptor
        child.started_at = time.monotonic()
        child.next_start_at = None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            pid_file(self.run_dir, child.name).write_text(f"{child.process.pid}\n")

    def _publish(self) -> None:
        self._status_written = time.monotonic()
        if self.run_dir is None or self._stopping:
            return
        try:
            write_stack_status(
                self.run_dir / STATUS_FILE, supervisor_pid=os.getpid(), children=self.status()
            )
        except OSError as exc:  # a full disk must not stop the supervision itself
            self.say(f"could not write {self.run_dir / STATUS_FILE}: {exc}")

    def _child_status(self, child: Child, now: float) -> dict[str, Any]:
        recent = sum(1 for t in child.exits if now - t < WINDOW_SECONDS)
        running = child.running
        waiting = None if child.next_start_at is None else max(0.0, child.next_start_at - now)
        if running:
            assert child.process is not None
            state, detail = "running", f"running (pid {child.process.pid}) for "
            detail += f"{_duration(now - child.started_at)}"
            if recent:
                detail += f"; exited {recent} times in the last minute"
        elif waiting is not None and child.backoff_level:
            state = "backing off"
            detail = (
                f"exited {recent} times in the last minute (last exit code "
                f"{child.last_exit_code}): starting it again in {waiting:.0f} s"
            )
        elif waiting is not None:
            state, detail = "stopped", f"exited with code {child.last_exit_code}; restarting"
        else:
            state, detail = "stopped", "not started" if child.process is None else "stopped"
        return {
            "state": state,
            "pid": child.process.pid if running and child.process else None,
            "restarts_last_minute": recent,
            "last_exit_code": child.last_exit_code,
            "next_start_in_s": None if running or waiting is None else round(waiting, 1),
            "detail": detail,
        }


def backoff_seconds(level: int) -> float:
    """The pause before the level-th consecutive restart of a crash-looping child."""
    return float(min(BACKOFF_FIRST_S * 2 ** (level - 1), BACKOFF_MAX_S))


def spawn_tied(
    command: list[str],
    *,
    env: dict[str, str],
    pass_fds: tuple[int, ...] = (),
    output: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a process that dies with this one (SIGTERM), in its own session: Ctrl-C reaches
    only the supervisor, which then stops its children in order. Its stdout and stderr go to
    `output` when given (else to this process's)."""
    return subprocess.Popen(
        command,
        env=env,
        start_new_session=True,
        pass_fds=pass_fds,
        preexec_fn=_die_with_parent(os.getpid()),
        stdout=output,
        stderr=None if output is None else subprocess.STDOUT,
    )


def log_file(log_dir: Path, name: str) -> Path:
    return log_dir / f"{name.replace(' ', '-')}.log"


def _open_log(child: Child) -> IO[bytes] | None:
    """The child's log, opened for its next start: emptied at its first start under this
    supervisor (a log per `make run`), appended to at each restart, which a line marks."""
    if child.log_path is None:
        return None
    child.log_path.parent.mkdir(parents=True, exist_ok=True)
    output = child.log_path.open("ab" if child.process is not None else "wb")
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    output.write(f"--- {child.name} started {stamp}: {' '.join(child.command)}\n".encode())
    output.flush()
    return output


def stop_on_signals() -> None:
    """Make SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread, so that the
    `finally` that stops the children runs. Set explicitly: a shell that starts us in the
    background ignores SIGINT, and SIGHUP (terminal closed) would otherwise kill us outright."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _interrupt)


def ignore_stop_signals() -> None:
    """While stopping: a second Ctrl-C (or the TERM that reaches a whole process group) must
    not cut the clean-up short and leave children behind."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name.replace(' ', '-')}.pid"


def stop_leftovers(
    run_dir: Path,
    *,
    say: Callable[[str], None],
    keep: Iterable[int] = (),
    names: tuple[str, ...] = STACK_PROCESSES,
    timeout: float = 10.0,
) -> list[int]:
    """Stop the processes named by the pid files in run_dir (a `make run` that was killed left
    them serving) and remove the files; returns the pids stopped.

    A pid is ours only while its process is older than its pid file and its command line
    names one of `names`: after a reboot or a long time the pid may belong to anyone.
    """
    keep = set(keep)
    found: list[psutil.Process] = []
    for path in sorted(run_dir.glob("*.pid")):
        process = _recorded_process(path, names)
        if process is not None and process.pid not in keep:
            say(f"stopping {path.stem} (pid {process.pid}), left running by an earlier start")
            found.append(process)
        if process is None or process.pid not in keep:
            path.unlink(missing_ok=True)
    for process in found:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(found, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)
    return [process.pid for process in found]


def _recorded_process(path: Path, names: tuple[str, ...]) -> psutil.Process | None:
    try:
        pid = int(path.read_text().split()[0])
        written = path.stat().st_mtime
        process = psutil.Process(pid)
        command = " ".join(process.cmdline())
        started = process.create_time()
    except (OSError, ValueError, IndexError, psutil.Error):
        return None
    if pid == os.getpid() or started > written + 1.0:
        return None
    return process if any(name in command for name in names) else None


def _die_with_parent(parent: int) -> Callable[[], None]:
    """For preexec_fn (in the child, between fork and exec): SIGTERM when the parent dies."""

    def ask_kernel() -> None:
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # it died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return ask_kernel


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
