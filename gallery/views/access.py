"""Who may see staff pages: anonymous visitors go to sign in, signed-in non-staff get 403."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


def staff_refused(request: HttpRequest, *, what: str) -> HttpResponse | None:
    """A redirect to sign in, or PermissionDenied ("<what> is for staff."), else None."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not request.user.is_staff:
        raise PermissionDenied(f"{what} for staff.")
    return None
