"""`make run`: migrate, build the tiny models, collect static files, start the Celery workers
(renders on `gpu`, embeddings and the sweeper on `cpu`), beat, and the site on gunicorn
(config/gunicorn.py), seed the demo.

Everything it starts stops on Ctrl-C, `kill` or a closed terminal; its children die with it
even when it is killed with SIGKILL, and a watchdog then stops the embedded servers. A second
run reuses the data under SEEDBANK_VAR_DIR.

The terminal shows only this command's own lines and the demo's progress bar: what the workers,
beat and gunicorn write (banners, warnings, tracebacks) goes to SEEDBANK_VAR_DIR/log/<name>.log
(gpu-worker, cpu-worker, beat, web-server), said once at start.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from config import embedded
from gallery.management.commands.seed_demo import DEMO_USERNAME, demo_password
from gallery.management.stack_status import STATUS_FILE, read_stack_status, stack_status_stale
from gallery.management.supervisor import (
    CHECK_EVERY_S,
    Supervisor,
    ignore_stop_signals,
    log_file,
    pid_file,
    spawn_tied,
    stop_leftovers,
    stop_on_signals,
)
from generator.services.render_jobs import jobs_release_worker
from search.selectors import active_embedding_model, embedding_model_name

# Workers neither ask their neighbours for revoked tasks when they start (mingle: a cancel lives
# on the job's row, and the claim refuses it) nor gossip: a second less to start, and a broker
# that drops during mingle made Celery exit with "Unrecoverable error".
QUIET_START = ("--without-mingle", "--without-gossip")


def worker_command(name: str = "gpu") -> list[str]:
    """A render worker: one pool process per GPU (one render at a time), which keeps its
    pipeline loaded between jobs. Prefork rather than solo so that task time limits work: a
    render past its hard limit is killed and the process replaced."""
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "-Q", "gpu", "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO",
        "-n", f"{name}@{socket.gethostname()}", *QUIET_START,
    ]  # fmt: skip


def cpu_worker_command(name: str = "cpu") -> list[str]:
    """Embeddings and the sweeper, so they never wait behind renders (nor renders behind them)."""
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "-Q", "cpu", "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO",
        "-n", f"{name}@{socket.gethostname()}", *QUIET_START,
    ]  # fmt: skip


def beat_command() -> list[str]:
    """Celery beat: the periodic job sweep (exactly one per deployment)."""
    return [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]


def web_command(addr: str, fd: int | None = None) -> list[str]:
    """The application server: gunicorn with the settings in config/gunicorn.py, on addr or
    on the listening socket `fd` (see web_socket)."""
    config = str(settings.BASE_DIR / "config" / "gunicorn.py")
    bind = addr if fd is None else f"fd://{fd}"
    return [sys.executable, "-m", "gunicorn", "-c", config, "--bind", bind, "config.wsgi"]


def web_socket(addr: str) -> socket.socket | None:
    """The site's listening socket, opened once here and handed to each gunicorn master: it
    stays open while a killed web server is replaced, so visitors wait in its queue rather
    than being refused, and the old master's workers serve from it until the new master's
    are ready (config/gunicorn.py, Worker). None for a Unix socket address (gunicorn binds)."""
    if addr.startswith("unix:"):
        return None
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # The workers of a web server killed with an earlier `make run` may hold the port a little
    # longer (config/gunicorn.py, ORPHAN_GRACE_S).
    for attempt in range(15):
        try:
            listener = socket.create_server((host, int(port)), family=family, backlog=2048)
            break
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or attempt == 14:
                raise CommandError(f"cannot listen on {addr}: {exc}") from exc
            time.sleep(1)
        except ValueError as exc:
            raise CommandError(f"cannot listen on {addr}: {exc}") from exc
    listener.set_inheritable(True)
    return listener


def child_environment() -> dict[str, str]:
    """Children reuse this process's servers instead of attaching again."""
    env = dict(os.environ)
    env["DATABASE_URL"] = embedded.database_url(connection.settings_dict)
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class Command(BaseCommand):
    help = "Run Seedbank locally: embedded Postgres + Redis, a worker, the site, a demo gallery."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default=os.environ.get("SEEDBANK_ADDR", "127.0.0.1:8000"))

    def handle(self, *args: object, addr: str, **options: object) -> None:
        stop_on_signals()
        run_dir = settings.VAR_DIR / "run"
        _refuse_second_stack(run_dir)
        children: Supervisor | None = None
        seed: subprocess.Popen[bytes] | None = None
        listener: socket.socket | None = None
        try:
            # A `make run` that was killed (-9) left its workers and web server serving, with
            # the old code and settings; the embedded servers it left are reused as they are.
            stop_leftovers(run_dir, say=self._say, keep=[embedded.embedded_broker_pid() or 0])
            listener = web_socket(addr)  # before any work: a port in use is said at once
            fds = () if listener is None else (listener.fileno(),)
            embedded.embedded_servers_watch()
            if broker := embedded.embedded_broker_pid():
                run_dir.mkdir(parents=True, exist_ok=True)
                pid_file(run_dir, "redis").write_text(f"{broker}\n")
            call_command("migrate", interactive=False, verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)
            call_command("demo_models")
            _embedding_model_follow_settings()
            # Records stored before renders wrote grid previews get them now (none: one query).
            call_command("previews")
            env = child_environment()
            gpu = worker_command()
            log_dir = settings.VAR_DIR / "log"
            children = Supervisor(
                {
                    "gpu worker": gpu,
                    "cpu worker": cpu_worker_command(),
                    "beat": beat_command(),
                    "web server": web_command(addr, fds[0] if fds else None),
                },
                env=env,
                say=self._say,
                # Its render goes back to the queue now, not when its lease runs out.
                on_exit={"gpu worker": _release_jobs(gpu[gpu.index("-n") + 1])},
                pass_fds={"web server": fds},
                run_dir=run_dir,
                log_dir=log_dir,
            )
            children.start()
            self._say(
                "the workers, beat and the web server write to "
                f"{log_file(log_dir, 'gpu worker')} and its neighbours (tail -f {log_dir}/*.log)"
            )
            # In a process of its own: the supervisor keeps watching while the demo renders.
            manage = str(settings.BASE_DIR / "manage.py")
            seed = spawn_tied([sys.executable, manage, "seed_demo", "--wait"], env=env)
            # A worker or web server that dies (killed, out of memory) is started again; the
            # site keeps serving meanwhile, even while one child crash-loops.
            while True:
                children.check()
                if seed is not None and seed.poll() is not None:
                    self._seeded(addr, seed.returncode)
                    seed = None
                time.sleep(CHECK_EVERY_S)
        except KeyboardInterrupt:
            self._say("stopping…")
        finally:
            ignore_stop_signals()
            if seed is not None:
                seed.terminate()
                seed.wait()
            if children is not None:
                children.stop()
            embedded.stop_embedded_broker()
            pid_file(run_dir, "redis").unlink(missing_ok=True)
            if listener is not None:
                listener.close()

    def _seeded(self, addr: str, code: int) -> None:
        if code:
            self._say(f"the demo could not be seeded (exit code {code}); the site still runs.")
        self.stdout.write(
            self.style.SUCCESS(
                f"\nSeedbank is running at http://{addr}/\n"
                f"Sign in as '{DEMO_USERNAME}' with password '{demo_password()}' "
                "(staff: /admin/). Ctrl-C stops everything.\n"
            )
        )

    def _say(self, line: str) -> None:
        try:
            self.stderr.write(f"runstack: {line}")
        except OSError:  # the terminal closed (SIGHUP): stopping must go on regardless
            pass


def _release_jobs(worker: str) -> Callable[[str], object]:
    def release(name: str) -> int:
        return jobs_release_worker(worker=worker)

    return release


def _refuse_second_stack(run_dir: Path) -> None:
    """Two `make run` on one data folder would fight over its servers and each other's
    children (the second would stop the first one's as leftovers)."""
    status = read_stack_status(run_dir / STATUS_FILE)
    if status is None or stack_status_stale(status):
        return
    pid = status.get("supervisor_pid")
    if isinstance(pid, int) and pid != os.getpid() and psutil.pid_exists(pid):
        raise CommandError(
            f"another `make run` (pid {pid}) is running on {run_dir.parent}; stop it first, "
            "or give this one its own SEEDBANK_VAR_DIR."
        )


def _embedding_model_follow_settings() -> None:
    """Re-embed the archive when SEEDBANK_CLIP_PATH names another CLIP than the active one (an
    older `make run` data folder embedded with the random tiny CLIP, say): else searches would
    keep the old vectors."""
    configured = embedding_model_name(Path(settings.SEEDBANK_CLIP_PATH))
    active = active_embedding_model()
    if active.pk is not None and active.name != configured:
        call_command("reembed", model=str(settings.SEEDBANK_CLIP_PATH))
