"""Gunicorn settings for `make run` and production: `gunicorn -c config/gunicorn.py config.wsgi`.

Threads (gthread) rather than more processes: a page waits mostly on Postgres, and each process
holds the CLIP text model once it has served a vector search. Every thread may hold one pooled
database connection (SEEDBANK_DB_POOL_MAX per process), so web connections stay at most
workers x pool size, well under Postgres' max_connections.
"""

import multiprocessing
import os

bind = os.environ.get("SEEDBANK_ADDR", "127.0.0.1:8000")
workers = int(os.environ.get("SEEDBANK_WEB_WORKERS") or multiprocessing.cpu_count() + 1)
worker_class = "gthread"
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


def post_worker_init(worker: object) -> None:
    """Load the CLIP text model and jieba before the first visitor waits for them."""
    # Imported here: Django is set up only once gunicorn has loaded the application.
    from search.selectors import text_embedder_warm

    text_embedder_warm()
