"""Gunicorn settings for `make run` and production: `gunicorn -c config/gunicorn.py config.wsgi`.

Threads (gthread) rather than more processes: a page waits mostly on Postgres, and each process
holds the CLIP text model once it has served a vector search. Every thread may hold one pooled
database connection (SEEDBANK_DB_POOL_MAX per process), so web connections stay at most
workers x pool size, well under Postgres' max_connections.
"""

import multiprocessing
import os
import threading
import time

from gunicorn.workers.gthread import ThreadWorker

# How long the workers of a killed master go on serving under `make run` (see Worker).
ORPHAN_GRACE_S = 10.0


class Worker(ThreadWorker):
    """gthread's worker, which stops once its master is gone (killed, crashed), except when it
    serves a socket handed down by its parent's parent (`--bind fd://N`: `make run`, whose
    supervisor holds the socket and starts a new master at once). Then it goes on serving
    from that socket for ORPHAN_GRACE_S, while the new master loads the application, and the
    site never stops answering; on its own socket it would keep the new master from binding."""

    orphaned_at: float | None = None

    def is_parent_alive(self) -> bool:
        if self.ppid == os.getppid():
            return True
        if not all(str(address).startswith("fd://") for address in self.cfg.bind):
            return bool(super().is_parent_alive())
        if self.orphaned_at is None:
            self.orphaned_at = time.monotonic()
            self.log.info("Master gone: serving %.0f s more while a new one starts", ORPHAN_GRACE_S)
        return time.monotonic() - self.orphaned_at < ORPHAN_GRACE_S


bind = os.environ.get("SEEDBANK_ADDR", "127.0.0.1:8000")
workers = int(os.environ.get("SEEDBANK_WEB_WORKERS") or multiprocessing.cpu_count() + 1)
worker_class = Worker
threads = int(os.environ.get("SEEDBANK_WEB_THREADS") or 4)
# Waiting connections queue in the kernel; a request that cannot get a database connection
# within SEEDBANK_DB_POOL_TIMEOUT answers 503 (config/middleware.py) well before this.
timeout = 60
graceful_timeout = 20
keepalive = 5
# Recycle processes now and then: a slow leak in any library cannot grow without bound.
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
access_log_format = '%(t)s access %(h)s "%(r)s" %(s)s %(b)s %(M)sms'
errorlog = "-"
# The application (Django, then every view through the URLconf: ~2 s of imports) is loaded
# once, in the master, and the workers forked from it serve at once: a web server restarted
# after a crash serves ~2 s after it starts rather than ~5 s (each worker importing it all
# at the same time on a small machine), and a worker recycled by max_requests costs nothing.
# Nothing opens a database or broker connection, nor a thread, before the fork.
preload_app = True


def when_ready(server: object) -> None:
    """In the master, before the first fork: import the URLconf (and with it every view),
    which Django would otherwise do on each worker's first request."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - loading it is the point


def post_worker_init(worker: object) -> None:
    """Load the CLIP text model and jieba in the background. In the foreground, a worker would
    serve nothing for the ~20 s they take on a small machine (a web server restarted after a
    crash stayed down that long); now it serves at once, and a search by meaning that comes
    before the model is loaded waits for it (search.selectors loads it once, under a lock)."""
    # Imported here: Django is set up only once gunicorn has loaded the application.
    from django.db import connections

    from search.selectors import text_embedder_warm

    def warm() -> None:
        try:
            text_embedder_warm()
        finally:
            connections.close_all()  # this thread's own: no request ends to close it

    threading.Thread(target=warm, name="text-embedder-warm", daemon=True).start()
