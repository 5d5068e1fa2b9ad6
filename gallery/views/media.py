"""Stored files (rendered PNGs, thumbnails, uploads), served only to those who may see them.

Names are not secrets (record ids are sequential), so every request is checked against the
record the file belongs to. Locally the file is streamed from MEDIA_ROOT; behind nginx set
SEEDBANK_MEDIA_ACCEL_PREFIX (e.g. /protected-media/) and nginx sends the bytes from an
`internal` location after this check (X-Accel-Redirect), so no Python process streams them.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.utils._os import safe_join
from django.views.decorators.http import require_safe

from generator.selectors.records import media_visible


@require_safe
def media(request: HttpRequest, path: str) -> HttpResponse:
    try:
        full = Path(safe_join(settings.MEDIA_ROOT, path))
    except SuspiciousFileOperation:  # a path escaping MEDIA_ROOT
        raise Http404("No such file") from None
    if not media_visible(name=path, viewer=request.user) or not full.is_file():
        raise Http404("No such file")
    content_type = mimetypes.guess_type(full.name)[0] or "application/octet-stream"
    prefix = settings.SEEDBANK_MEDIA_ACCEL_PREFIX
    if prefix:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + path
    else:
        response = FileResponse(full.open("rb"), content_type=content_type)
    # Visibility can change (hide, evict): shared caches must not keep a copy.
    response["Cache-Control"] = "private, max-age=3600"
    return response
