"""`make run`: migrate, build the tiny models, collect static files, start the Celery workers
(renders on `gpu`, embeddings and the sweeper on `cpu`), beat, and the site on gunicorn
(config/gunicorn.py), seed the demo.

Everything it starts stops on Ctrl-C. A second run reuses the data under SEEDBANK_VAR_DIR.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from config import embedded
from gallery.management.commands.seed_demo import DEMO_USERNAME, demo_password
from gallery.management.supervisor import CrashLoop, Supervisor
from search.selectors import active_embedding_model, embedding_model_name


def worker_command(name: str = "gpu") -> list[str]:
    """A render worker: one pool process per GPU (one render at a time), which keeps its
    pipeline loaded between jobs. Prefork rather than solo so that task time limits work: a
    render past its hard limit is killed and the process replaced."""
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "-Q", "gpu", "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO",
        "-n", f"{name}@{socket.gethostname()}",
    ]  # fmt: skip


def cpu_worker_command(name: str = "cpu") -> list[str]:
    """Embeddings and the sweeper, so they never wait behind renders (nor renders behind them)."""
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "-Q", "cpu", "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO",
        "-n", f"{name}@{socket.gethostname()}",
    ]  # fmt: skip


def beat_command() -> list[str]:
    """Celery beat: the periodic job sweep (exactly one per deployment)."""
    return [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]


def web_command(addr: str) -> list[str]:
    """The application server: gunicorn with the settings in config/gunicorn.py."""
    config = str(settings.BASE_DIR / "config" / "gunicorn.py")
    return [sys.executable, "-m", "gunicorn", "-c", config, "--bind", addr, "config.wsgi"]


def child_environment() -> dict[str, str]:
    """Children reuse this process's servers instead of attaching again."""
    env = dict(os.environ)
    env["DATABASE_URL"] = embedded.database_url(connection.settings_dict)
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run Seedbank locally: embedded Postgres + Redis, a worker, the site, a demo gallery."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default=os.environ.get("SEEDBANK_ADDR", "127.0.0.1:8000"))

    def handle(self, *args: object, addr: str, **options: object) -> None:
        # Ctrl-C and `kill` (systemd, container stop) both mean "stop everything cleanly"; set
        # explicitly because a shell that starts us in the background ignores SIGINT.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _interrupt)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("demo_models")
        _embedding_model_follow_settings()
        # Records stored before renders wrote grid previews get them now (none: one query).
        call_command("previews")
        children = Supervisor(
            {
                "gpu worker": worker_command(),
                "cpu worker": cpu_worker_command(),
                "beat": beat_command(),
                "web server": web_command(addr),
            },
            env=child_environment(),
            say=lambda line: self.stderr.write(f"runstack: {line}"),
        )
        children.start()
        try:
            call_command("seed_demo", wait=True)
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nSeedbank is running at http://{addr}/\n"
                    f"Sign in as '{DEMO_USERNAME}' with password '{demo_password()}' "
                    "(staff: /admin/). Ctrl-C stops everything.\n"
                )
            )
            # A worker or web server that dies (killed, out of memory) is started again; the
            # site keeps serving meanwhile. Only a crash loop stops everything.
            while True:
                children.check()
                time.sleep(1)
        except CrashLoop as exc:
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            children.stop()
            embedded.stop_embedded_broker()


def _embedding_model_follow_settings() -> None:
    """Re-embed the archive when SEEDBANK_CLIP_PATH names another CLIP than the active one (an
    older `make run` data folder embedded with the random tiny CLIP, say): else searches would
    keep the old vectors."""
    configured = embedding_model_name(Path(settings.SEEDBANK_CLIP_PATH))
    active = active_embedding_model()
    if active.pk is not None and active.name != configured:
        call_command("reembed", model=str(settings.SEEDBANK_CLIP_PATH))
