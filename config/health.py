"""/healthz: what this web process can reach, answered within HEALTH_DEADLINE_SECONDS.

200 when the database and the broker answer (the web can serve and queue); the cache, the
workers and `make run`'s supervised processes are reported beside them, since the site serves
without any of them (pages skip the cache, submissions wait in the database for the broker, the
gallery needs no worker). A stalled server (stopped, not gone) must not hang the check: every
check runs in its own thread, and one that has not answered by the deadline is reported as
timed out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.cache import cache, caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from gallery.management.stack_status import STATUS_FILE, read_stack_status, stack_status_stale

HEALTH_DEADLINE_SECONDS = 1.5
WORKER_PING_SECONDS = 0.5
# Checks that outlive the deadline finish (their sockets time out) in these threads, so a
# stalled server cannot pile up threads: at most this many checks run at once per process.
_checks = ThreadPoolExecutor(max_workers=8, thread_name_prefix="healthz")


def _timed(check: Callable[[], dict[str, Any] | None]) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        started = time.perf_counter()
        try:
            detail = check()
        except Exception as exc:  # noqa: BLE001 - any failure is the answer a health check gives
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        ms = round((time.perf_counter() - started) * 1000, 1)
        return {"ok": True, "ms": ms, **(detail or {})}

    return run


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # this thread's own connection, back to the pool


def _broker() -> None:
    with current_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=1)


def _cache() -> dict[str, Any]:
    # The degrading backend never raises on get: ask it whether it is skipping Redis.
    cache.get("healthz")
    if getattr(cache, "available", True) is False:
        raise ConnectionError("the cache is unavailable; pages are served without it")
    return {"backend": type(caches["default"]).__name__}


def _workers() -> dict[str, Any]:
    replies = current_app.control.ping(timeout=WORKER_PING_SECONDS) or []
    return {"workers": sorted(name for reply in replies for name in reply)}


def _stack() -> dict[str, Any] | None:
    """`make run`'s children as its supervisor last wrote them; None without a supervisor."""
    status = read_stack_status(settings.VAR_DIR / "run" / STATUS_FILE)
    if status is None:
        return None
    if stack_status_stale(status):
        return {"ok": False, "error": "the supervisor stopped reporting (make run was killed?)"}
    children = status["children"]
    down = sorted(name for name, child in children.items() if child.get("state") != "running")
    return {"ok": not down, "down": down, "children": children}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Callable[[], dict[str, Any] | None]] = {
        "database": _database,
        "broker": _broker,
        "cache": _cache,
    }
    if request.GET.get("workers") != "0":
        checks["workers"] = _workers
    deadline = time.monotonic() + HEALTH_DEADLINE_SECONDS
    futures = {name: _checks.submit(_timed(check)) for name, check in checks.items()}
    results: dict[str, Any] = {}
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            results[name] = {"ok": False, "error": f"no answer within {HEALTH_DEADLINE_SECONDS} s"}
    stack = _stack()
    if stack is not None:
        results["stack"] = stack
    if "workers" not in results:
        results["workers"] = {"ok": None}
    healthy = results["database"]["ok"] and results["broker"]["ok"]
    down = sorted(name for name, result in results.items() if result.get("ok") is False)
    response = JsonResponse(
        {"status": "ok" if healthy else "unavailable", "down": down, **results},
        status=200 if healthy else 503,
    )
    if not healthy:
        response["Retry-After"] = "5"  # a load balancer's next probe
    return response
