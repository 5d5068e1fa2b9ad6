"""Sign-in throttling (django-axes, configured in config/settings.py): the answer to a locked-out
sign-in, and what a successful sign-in forgives.

Axes counts failed sign-ins per account and per address (the address as the rate limits read
it: gallery.ratelimit.client_address) in the database. Once either reaches AXES_FAILURE_LIMIT
within AXES_COOLOFF_TIME, every sign-in for that account, or from that address, is refused, the
right password included, until the cool-off has passed since the last failure.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from axes.helpers import get_cool_off
from axes.utils import reset
from django.contrib.auth.signals import user_logged_in
from django.http import HttpRequest, HttpResponse
from django.utils.translation import ngettext

from gallery import ratelimit


def client_ip(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the address the rate limits use, when it is an address at all
    (axes stores it in an inet column: a test request has none, a misconfigured proxy header
    could hold anything). Such requests share one count."""
    address = ratelimit.client_address(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After and the reason, in the reader's language (a
    page), or as JSON for the API and scripts that ask for it."""
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off is not None else None
    minutes = -(-(seconds or 0) // 60)
    message = ngettext(
        "Too many failed sign-ins for this account or from your address: signing in is "
        "paused for %(minutes)s minute after the last failed try. Try again then.",
        "Too many failed sign-ins for this account or from your address: signing in is "
        "paused for %(minutes)s minutes after the last failed try. Try again then.",
        minutes,
    ) % {"minutes": minutes}
    as_json = request.path_info.startswith("/api/") or (
        request.headers.get("x-requested-with") == "XMLHttpRequest"
        or "application/json" in request.headers.get("accept", "")
    )
    return ratelimit.too_many_requests(request, message, retry_after=seconds, as_json=as_json)


def forgive_on_sign_in(
    sender: Any, *, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    """A successful sign-in clears that account's failures from that address only. Axes' own
    AXES_RESET_ON_SUCCESS would clear everything matching either parameter: every failure from
    the address too, so someone with an account could sign into it between guesses at another
    account's password and never be locked out."""
    address = client_ip(request) if request is not None else None
    if address is not None:  # else not signed in through a request (tests' force_login)
        reset(ip=address, username=user.get_username())


def connect() -> None:
    user_logged_in.connect(forgive_on_sign_in, dispatch_uid="gallery.signin.forgive_on_sign_in")
