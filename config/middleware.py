"""Request ids for the logs, a 503 (not a 500) when the database is saturated, and the
language a request is answered in."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.middleware import locale
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.cache import patch_vary_headers

logger = logging.getLogger(__name__)

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# An id a proxy sent is kept only if it looks like one (it ends up in every log line).
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
RETRY_AFTER_SECONDS = 5


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class RequestIdMiddleware:
    """Tag every log line of a request with its id (the proxy's X-Request-ID, or a new one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex[:16]
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RejectNulMiddleware:
    """A NUL byte in the path or query string is never meaningful and Postgres cannot store or
    compare it: answer 400 before any view passes it to a query."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            return HttpResponseBadRequest(
                "Addresses and query parameters cannot contain NUL characters.",
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)


class OverloadMiddleware:
    """No free database connection (pool timeout, server full): 503 with Retry-After.

    The pool bounds connections, so saturation shows up as a wait that times out; the answer
    tells clients to come back instead of failing them, and the site recovers by itself as soon
    as the load drops.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError):
            return None
        logger.warning("database unavailable, answering 503: %s", exception)
        wants_json = request.path.startswith("/api/")
        if wants_json:
            response = HttpResponse(
                b'{"error": "The service is busy; try again shortly."}',
                status=503,
                content_type="application/json",
            )
        else:
            response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


class LocaleMiddleware(locale.LocaleMiddleware):
    """Pages in the visitor's language (the switcher's cookie, else Accept-Language); the JSON
    API always in English.

    The API's messages are machine-readable (clients match on them), yet it shares forms and
    rules with the pages, so it pins the default language instead of following the browser.
    """

    def process_request(self, request: HttpRequest) -> None:
        if request.path_info.startswith("/api/"):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
            return
        super().process_request(request)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if request.path_info.startswith("/api/"):
            return response
        # The language cookie chooses the page as much as Accept-Language does.
        patch_vary_headers(response, ("Cookie",))
        return super().process_response(request, response)
