"""/healthz: can this web process reach the database and the broker, and is a worker alive?

200 when the database and the broker answer (the web can serve and queue); the worker count is
reported beside them, since a site without workers still serves the gallery.
"""

from __future__ import annotations

import time
from typing import Any

from celery import current_app
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

WORKER_PING_SECONDS = 0.5


def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # noqa: BLE001 - any failure is the answer a health check gives
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **(detail or {})}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    with current_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=2)


def _workers() -> dict[str, Any]:
    replies = current_app.control.ping(timeout=WORKER_PING_SECONDS) or []
    return {"workers": sorted(name for reply in replies for name in reply)}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _timed(_database), "broker": _timed(_broker)}
    workers = _timed(_workers) if request.GET.get("workers") != "0" else {"ok": None}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **checks, "workers": workers},
        status=200 if healthy else 503,
    )
