"""Fixed-window rate limits on Django's cache, and the 429 answer that explains them."""

from __future__ import annotations

import time

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

WINDOW_SECONDS = 60


def client_identity(request: HttpRequest) -> str:
    """Signed-in users by id; visitors by address (behind a proxy, configure it to set this)."""
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"ip:{request.META.get('REMOTE_ADDR', 'unknown')}"


def hit(*, scope: str, identity: str, per_minute: int) -> int | None:
    """Count one request; when over the limit return the seconds until the window resets."""
    now = time.time()
    key = f"ratelimit:{scope}:{identity}:{int(now // WINDOW_SECONDS)}"
    cache.add(key, 0, timeout=WINDOW_SECONDS + 1)
    if cache.incr(key) > per_minute:
        return WINDOW_SECONDS - int(now % WINDOW_SECONDS)
    return None


def too_many_requests(
    request: HttpRequest, message: str, *, retry_after: int | None = None, as_json: bool = False
) -> HttpResponse:
    response: HttpResponse
    if as_json:
        response = JsonResponse({"error": message}, status=429)
    else:
        response = render(request, "429.html", {"message": message}, status=429)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def limit_message(what: str, per_minute: int, retry_after: int) -> str:
    return (
        f"Too many {what}: the limit is {per_minute} a minute. Try again in {retry_after} seconds."
    )
