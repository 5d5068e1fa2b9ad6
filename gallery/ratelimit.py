"""Fixed-window rate limits on Django's cache, and the 429 answer that explains them.

When the shared cache cannot count (Redis stopped, stalled or gone: gallery/cache.py), each
web process counts in its own memory until it is back. Limits then hold per process (a client
gets at most `limit` x web processes): looser, but the site keeps serving. Refusing everyone
with a 503 instead would turn a cache outage into a site outage, and a rate limiter exists to
keep one client from crowding out the others, not to stop all of them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError

from gallery.cache import CacheUnavailable

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

WINDOW_SECONDS = 60

logger = logging.getLogger(__name__)


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


def hit(*, scope: str, identity: str, limit: int, window: int = WINDOW_SECONDS) -> int | None:
    """Count one request; when over `limit` per `window` seconds return the seconds until the
    window resets."""
    now = time.time()
    window_index = int(now // window)
    key = f"ratelimit:{scope}:{identity}:{window_index}"
    try:
        cache.add(key, 0, timeout=window + 1)
        count = cache.incr(key)
    except (CacheUnavailable, RedisError, OSError, ValueError) as exc:
        # ValueError: the key the add() above could not write is missing (Django's incr).
        logger.debug("rate limit %s counted in this process (%s)", scope, exc)
        count = _local_counts.incr(key, expires=(window_index + 1) * window)
    if count > limit:
        return window - int(now % window)
    return None


class _LocalCounts:
    """Per-process counters for when the shared cache cannot count; expired windows are
    dropped as new ones start, so memory stays bounded by the clients of one window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def incr(self, key: str, *, expires: float) -> int:
        with self._lock:
            now = time.time()
            if len(self._counts) > 10_000:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count, _ = self._counts.get(key, (0, expires))
            self._counts[key] = (count + 1, expires)
            return count + 1


_local_counts = _LocalCounts()


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


def generation_refused(request: HttpRequest, *, as_json: bool = False) -> HttpResponse | None:
    """A 429 when this user submits faster than the generation rate limit, else None."""
    limit = settings.SEEDBANK_RATE_GENERATE_PER_MINUTE
    message = _(
        "Too many render requests: the limit is %(limit)s a minute. "
        "Try again in %(seconds)s seconds."
    )
    return _refused(request, scope="generate", message=message, limit=limit, as_json=as_json)


def search_refused(request: HttpRequest, *, as_json: bool = False) -> HttpResponse | None:
    """A 429 when this client searches faster than the search rate limit, else None."""
    limit = settings.SEEDBANK_RATE_SEARCH_PER_MINUTE
    message = _(
        "Too many searches: the limit is %(limit)s a minute. Try again in %(seconds)s seconds."
    )
    return _refused(request, scope="search", message=message, limit=limit, as_json=as_json)


def picture_check_refused(request: HttpRequest, *, as_json: bool = False) -> HttpResponse | None:
    """A 429 when this client checks pictures faster than the search rate limit allows (a check
    decodes an upload like an image search, so it is held to the same number, counted apart)."""
    limit = settings.SEEDBANK_RATE_SEARCH_PER_MINUTE
    message = _(
        "Too many picture checks: the limit is %(limit)s a minute. "
        "Try again in %(seconds)s seconds."
    )
    return _refused(request, scope="check", message=message, limit=limit, as_json=as_json)


def signup_refused(request: HttpRequest) -> HttpResponse | None:
    """A 429 when one address creates accounts faster than SEEDBANK_RATE_SIGNUP_PER_HOUR."""
    return _refused(
        request,
        scope="signup",
        message=_(
            "Too many new accounts from your address: the limit is %(limit)s an hour. "
            "Try again in %(seconds)s seconds."
        ),
        limit=settings.SEEDBANK_RATE_SIGNUP_PER_HOUR,
        identity=f"ip:{client_address(request)}",  # by address even when signed in
        window=3600,
    )


def export_refused(request: HttpRequest) -> HttpResponse | None:
    """A 429 when this client exports faster than SEEDBANK_RATE_EXPORT_PER_HOUR."""
    message = _(
        "Too many exports: the limit is %(limit)s an hour. Try again in %(seconds)s seconds."
    )
    return _refused(request, scope="export", message=message, window=3600,
                    limit=settings.SEEDBANK_RATE_EXPORT_PER_HOUR)  # fmt: skip


def like_refused(request: HttpRequest, *, as_json: bool = False) -> HttpResponse | None:
    """A 429 when this user likes or unlikes faster than SEEDBANK_RATE_LIKE_PER_MINUTE."""
    limit = settings.SEEDBANK_RATE_LIKE_PER_MINUTE
    message = _(
        "Too many likes: the limit is %(limit)s a minute. Try again in %(seconds)s seconds."
    )
    return _refused(request, scope="like", message=message, limit=limit, as_json=as_json)


def _refused(
    request: HttpRequest,
    *,
    scope: str,
    message: StrOrPromise,
    limit: int,
    as_json: bool = False,
    identity: str | None = None,
    window: int = WINDOW_SECONDS,
) -> HttpResponse | None:
    """`message` says the limit and the wait (%(limit)s, %(seconds)s) in the reader's language;
    the JSON API's is English (config.middleware.LocaleMiddleware)."""
    identity = identity or client_identity(request)
    wait = hit(scope=scope, identity=identity, limit=limit, window=window)
    if wait is None:
        return None
    text = str(message) % {"limit": limit, "seconds": wait}
    return too_many_requests(request, text, retry_after=wait, as_json=as_json)
