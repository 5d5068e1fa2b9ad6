"""Collections: a curated collection's page and its export as a zip."""

from __future__ import annotations

import tempfile

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from archive.services.exports import export_zip
from gallery import ratelimit
from gallery.page_cache import anonymous_page_cache
from gallery.selectors import (
    collection_detail,
    collection_images,
    images_likes_mark,
    viewer_hides_nsfw,
)


@require_safe
@anonymous_page_cache
def collection(request: HttpRequest, slug: str) -> HttpResponse:
    found = collection_detail(slug=slug, viewer=request.user)
    if found is None:  # private collections do not exist for non-staff
        raise Http404("No such collection")
    viewer = request.user
    images = collection_images(
        collection=found, viewer=viewer, hide_nsfw=viewer_hides_nsfw(viewer=viewer)
    )
    images_likes_mark(images=images, viewer=viewer)
    return render(request, "gallery/collection.html", {"collection": found, "images": images})


@require_safe
def collection_export(request: HttpRequest, slug: str) -> HttpResponse:
    """The collection as a zip: PNGs with their recipe chunks and recipes.jsonl."""
    found = collection_detail(slug=slug, viewer=request.user)
    if found is None:
        raise Http404("No such collection")
    if refused := ratelimit.export_refused(request):
        return refused
    spool = tempfile.SpooledTemporaryFile(max_size=50_000_000)
    export_zip(collection_images(collection=found, viewer=request.user), spool)
    spool.seek(0)
    return FileResponse(spool, as_attachment=True, filename=f"{found.slug}.zip",
                        content_type="application/zip")  # fmt: skip
