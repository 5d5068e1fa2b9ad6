"""Browse, record pages (detail, diff, export) and restoring an evicted record."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_POST, require_safe

from archive.selectors import image_prompt_source
from engine.export import export_script
from gallery import ratelimit
from gallery.page_cache import anonymous_page_cache
from gallery.selectors import (
    collections_with_covers,
    gallery_page,
    image_cost,
    image_likes,
    images_likes_mark,
    most_liked_page,
    nsfw_left_out,
    viewer_hides_nsfw,
)
from gallery.views.search import search_page
from generator.models import Image, RenderJob
from generator.selectors.exports import image_export_document, image_export_files
from generator.selectors.lineage import image_lineage, images_comparison
from generator.selectors.model_versions import image_model_problem, model_version_by_digest
from generator.selectors.quotas import QuotaExceeded
from generator.selectors.records import (
    environment_public,
    image_detail,
    image_last_reproduction,
    image_pending_restore,
    image_variants,
)
from generator.services.reproductions import image_restore_request
from search.selectors import image_neighbours

# The searches the home page's introduction offers a first-time visitor, in the reader's
# language: each finds demo records by its words (gallery/demo.py; tests/gallery/test_home.py
# checks), and any gallery by meaning.
INTRO_SEARCHES = [
    pgettext_lazy("example search", "cats"),
    pgettext_lazy("example search", "stars"),
    pgettext_lazy("example search", "orange square"),
]


@require_safe
@anonymous_page_cache
def home(request: HttpRequest) -> HttpResponse:
    if request.GET.get("q", "").strip():  # the header's search box works from any page
        return search_page(request)
    cursor = request.GET.get("before")
    sort = "likes" if request.GET.get("sort") == "likes" else ""
    options = {
        "cursor": cursor,
        "page_size": settings.SEEDBANK_GALLERY_PAGE_SIZE,
        "hide_nsfw": viewer_hides_nsfw(viewer=request.user),
    }
    page = most_liked_page(**options) if sort else gallery_page(**options)
    images_likes_mark(images=page.images, viewer=request.user)
    collections = collections_with_covers(viewer=None, limit=12) if not cursor else []
    context = {"page": page, "collections": collections, "sort": sort}
    # Only the first page shows visitors the introduction; signed-in users know the site.
    if not cursor and not request.user.is_authenticated:
        context["intro_searches"] = [str(query) for query in INTRO_SEARCHES]
    return render(request, "gallery/home.html", context)


@require_safe
@anonymous_page_cache
def detail(request: HttpRequest, image_id: int) -> HttpResponse:
    image = image_detail(image_id=image_id, viewer=request.user)
    if image is None:
        raise Http404("No such image")
    restore = image_pending_restore(image=image)  # a page view never queues work
    neighbours = image_neighbours(image=image)
    image.likes, image.liked = image_likes(image=image, viewer=request.user)  # type: ignore[attr-defined]
    viewer = request.user
    context = {
        "image": image,
        "restore": restore,
        "job_statuses": RenderJob.Status.choices,
        "model_problem": image_model_problem(image=image),
        "recipe_json": json.dumps(image.recipe_portable(), ensure_ascii=False, indent=2),
        "environment_json": json.dumps(
            environment_public(image.environment), ensure_ascii=False, indent=2
        ),
        "lineage": image_lineage(image=image, viewer=request.user),
        # Rendered here from an imported row's prompt: said so, never shown as its original.
        "prompt_source": image_prompt_source(image=image),
        # The same recipe with other seeds (sets image.variants, the group's size).
        "variants": nsfw_left_out(image_variants(image=image, viewer=viewer), viewer=viewer),
        "similar": nsfw_left_out(neighbours.similar, viewer=viewer, image_of=_hit_image),
        "near_duplicates": nsfw_left_out(
            neighbours.near_duplicates, viewer=viewer, image_of=_hit_image
        ),
        "near_duplicate_bound": neighbours.bound,
        "last_reproduction": image_last_reproduction(image=image),
        "cost": image_cost(image=image),
        # Only SDXL records with a refiner pay for the lookup.
        "refiner_model": (model_version_by_digest(digest=image.refiner) if image.refiner else None),
    }
    return render(request, "gallery/detail.html", context)


def _hit_image(hit: Any) -> Image:
    return hit.image  # type: ignore[no-any-return]


@require_safe
@anonymous_page_cache
def diff(request: HttpRequest, image_id: int, other_id: int) -> HttpResponse:
    """Two recipes side by side (a lineage edge links parent → remix), changed fields marked."""
    comparison = images_comparison(before_id=image_id, after_id=other_id, viewer=request.user)
    if comparison is None:
        raise Http404("No such image")
    return render(request, "gallery/diff.html", {"comparison": comparison})


@require_safe
def export_recipe(request: HttpRequest, image_id: int, fmt: str) -> HttpResponse:
    """The record's recipe as JSON, or as a standalone script (torch + diffusers only)."""
    image = image_detail(image_id=image_id, viewer=request.user)
    if image is None:
        raise Http404("No such image")
    if fmt == "zip":
        # The script with what it needs beside it: the init image and mask of img2img and
        # inpainting records, under the content-addressed names the script looks for.
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in image_export_files(image=image).items():
                archive.writestr(f"seedbank-{image.pk}/{name}", data)
        response = HttpResponse(buffer.getvalue(), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="seedbank-{image.pk}.zip"'
        return response
    document = image_export_document(image=image)
    if fmt == "json":
        response: HttpResponse = JsonResponse(document, json_dumps_params={"ensure_ascii": False})
    else:
        response = HttpResponse(export_script(document), content_type="text/x-python")
    response["Content-Disposition"] = f'attachment; filename="seedbank-{image.pk}.{fmt}"'
    return response


@login_required
@require_POST
def restore(request: HttpRequest, image_id: int) -> HttpResponse:
    """Re-render an evicted record's pixels from its recipe (costs the requester's quota)."""
    image = image_detail(image_id=image_id, viewer=request.user)
    if image is None:
        raise Http404("No such image")
    if refused := ratelimit.generation_refused(request):
        return refused
    try:
        image_restore_request(image=image, requested_by=request.user)  # type: ignore[arg-type]
    except QuotaExceeded as exc:
        return ratelimit.too_many_requests(request, str(exc))
    return redirect("image_detail", image_id=image.pk)


@require_safe
def restore_status(request: HttpRequest, image_id: int) -> JsonResponse:
    """Progress of re-rendering an evicted record (public, like the record itself)."""
    image = image_detail(image_id=image_id, viewer=request.user)
    if image is None:
        return JsonResponse({"error": "No such image."}, status=404)
    restore = image_pending_restore(image=image)
    if restore is None:
        return JsonResponse({"status": "done" if image.image_file else "failed", "progress": {}})
    job = restore.job
    return JsonResponse(
        {
            "status": job.status,
            "progress": {"step": job.progress_step, "total": job.progress_total},
        }
    )
