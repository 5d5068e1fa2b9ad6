"""A few seconds of shared caching for what anonymous visitors see.

Most of an archive's traffic is anonymous and repetitive (the home page, popular records and
searches). Rendering each of those costs 10-35 ms of CPU; a cached copy costs a Redis read. The
cache is deliberately short (SEEDBANK_PAGE_CACHE_SECONDS, default 10): moderation ("hide") and
new records reach anonymous pages within that time, while signed-in users never see a cached
page. Pixels are never cached here: media stays permission-checked on every request.

Django's own cache_page keys on the Cookie header and caches signed-in pages too; this one
bypasses anyone with a session, and refuses to store a page that carries a CSRF token or sets a
cookie (one visitor's token must never reach another).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.translation import get_language

View = Callable[..., HttpResponse]


def _cacheable_request(request: HttpRequest) -> bool:
    return (
        settings.SEEDBANK_PAGE_CACHE_SECONDS > 0
        and request.method in ("GET", "HEAD")
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
        and "messages" not in request.COOKIES
        and not request.user.is_authenticated
    )


def _cacheable_response(request: HttpRequest, response: HttpResponse) -> bool:
    return (
        response.status_code == 200
        and not response.streaming
        and not response.cookies
        # get_token() was called: the page holds a CSRF token bound to this visitor's cookie.
        and not request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
    )


def _key(request: HttpRequest) -> str:
    path = request.get_full_path().encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(path).hexdigest()
    return f"page:{get_language() or ''}:{digest}"


def anonymous_page_cache(view: View) -> View:
    @wraps(view)
    def cached_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # A cached view that hands the request to another (home with ?q= → the search page)
        # looks the page up and stores it once, not once per view.
        if getattr(request, "_page_cache_seen", False) or not _cacheable_request(request):
            return view(request, *args, **kwargs)
        request._page_cache_seen = True  # type: ignore[attr-defined]
        key = _key(request)
        stored = cache.get(key)
        if stored is not None:
            content, content_type = stored
            response = HttpResponse(content, content_type=content_type)
            response["X-Page-Cache"] = "hit"
            return response
        response = view(request, *args, **kwargs)
        if _cacheable_response(request, response):
            cache.set(
                key,
                (response.content, response["Content-Type"]),
                settings.SEEDBANK_PAGE_CACHE_SECONDS,
            )
            response["X-Page-Cache"] = "miss"
        return response

    return cached_view
