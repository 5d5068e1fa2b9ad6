"""Fixed-window rate limits on Django's cache, and the 429 answer that explains them."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

WINDOW_SECONDS = 60


def client_address(request: HttpRequest) -> str:
    """The client's address: from the trusted proxy's header when one is configured
    (SEEDBANK_CLIENT_IP_HEADER, e.g. X-Forwarded-For: the proxy appends the peer it saw, so
    the last entry is the one it vouches for), else the TCP peer."""
    header = settings.SEEDBANK_CLIENT_IP_HEADER
    if header:
        forwarded = request.headers.get(header, "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return last[:64]
    return str(request.META.get("REMOTE_ADDR", "unknown"))


def client_identity(request: HttpRequest) -> str:
    """Signed-in users by id; visitors by address."""
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"ip:{client_address(request)}"


def hit(*, scope: str, identity: str, per_minute: int, window: int = WINDOW_SECONDS) -> int | None:
    """Count one request; when over the limit (per_minute per `window` seconds) return the
    seconds until the window resets."""
    now = time.time()
    key = f"ratelimit:{scope}:{identity}:{int(now // window)}"
    cache.add(key, 0, timeout=window + 1)
    if cache.incr(key) > per_minute:
        return window - int(now % window)
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


def generation_refused(request: HttpRequest, *, as_json: bool = False) -> HttpResponse | None:
    """A 429 when this user submits faster than the generation rate limit, else None."""
    return _refused(request, "generate", "render requests",
                    settings.SEEDBANK_RATE_GENERATE_PER_MINUTE, as_json)  # fmt: skip


def search_refused(request: HttpRequest, *, as_json: bool = False) -> HttpResponse | None:
    """A 429 when this client searches faster than the search rate limit, else None."""
    return _refused(request, "search", "searches",
                    settings.SEEDBANK_RATE_SEARCH_PER_MINUTE, as_json)  # fmt: skip


def signup_refused(request: HttpRequest) -> HttpResponse | None:
    """A 429 when one address creates accounts faster than SEEDBANK_RATE_SIGNUP_PER_HOUR."""
    per_hour = settings.SEEDBANK_RATE_SIGNUP_PER_HOUR
    wait = hit(scope="signup", identity=f"ip:{client_address(request)}", per_minute=per_hour,
               window=3600)  # fmt: skip
    if wait is None:
        return None
    message = (
        f"Too many new accounts from your address: {per_hour} per hour. "
        f"Try again in {wait // 60 + 1} minutes."
    )
    return too_many_requests(request, message, retry_after=wait)


def _refused(
    request: HttpRequest, scope: str, what: str, per_minute: int, as_json: bool
) -> HttpResponse | None:
    wait = hit(scope=scope, identity=client_identity(request), per_minute=per_minute)
    if wait is None:
        return None
    message = limit_message(what, per_minute, wait)
    return too_many_requests(request, message, retry_after=wait, as_json=as_json)
