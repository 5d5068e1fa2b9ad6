"""Browse, search, record detail and remix."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from gallery.selectors import (
    gallery_page,
    image_children,
    image_detail,
    image_export_document,
    image_last_reproduction,
    image_model_problem,
    image_pending_restore,
    reproduction_summary,
)
from gallery.services import image_restore_request, remix_submit
from generator.forms import RecipeForm
from search.selectors import images_by_text, images_similar_to

SEARCH_QUERY_MAX_CHARS = 500


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:SEARCH_QUERY_MAX_CHARS]
    if query:
        hits = images_by_text(query=query, limit=settings.SEEDBANK_GALLERY_PAGE_SIZE)
        return render(request, "gallery/search.html", {"query": query, "hits": hits})
    page = gallery_page(
        cursor=request.GET.get("before"), page_size=settings.SEEDBANK_GALLERY_PAGE_SIZE
    )
    return render(request, "gallery/home.html", {"page": page})


@require_GET
def detail(request: HttpRequest, image_id: int) -> HttpResponse:
    image = image_detail(image_id=image_id)
    if image is None:
        raise Http404("No such image")
    recipe = {
        "model": image.model_name,
        "model_digest": image.model_digest,
        **{
            key: value
            for key, value in RecipeForm.initial_from_image(image).items()
            if key not in {"model_version", "batch_size"}
        },
    }
    restore = image_restore_request(
        image=image, requested_by=request.user if request.user.is_authenticated else None
    )
    context = {
        "image": image,
        "restore": restore,
        "model_problem": image_model_problem(image=image),
        "recipe_json": json.dumps(recipe, ensure_ascii=False, indent=2),
        "environment_json": json.dumps(image.environment, ensure_ascii=False, indent=2),
        "children": image_children(image=image),
        "similar": images_similar_to(image=image),
        "last_reproduction": image_last_reproduction(image=image),
    }
    return render(request, "gallery/detail.html", context)


@require_GET
def export_recipe(request: HttpRequest, image_id: int, fmt: str) -> HttpResponse:
    """The record's recipe as JSON, or as a standalone script (torch + diffusers only)."""
    from generator.export import export_script

    image = image_detail(image_id=image_id)
    if image is None:
        raise Http404("No such image")
    document = image_export_document(image=image)
    if fmt == "json":
        response: HttpResponse = JsonResponse(document, json_dumps_params={"ensure_ascii": False})
    else:
        response = HttpResponse(export_script(document), content_type="text/x-python")
    response["Content-Disposition"] = f'attachment; filename="seedbank-{image.pk}.{fmt}"'
    return response


@staff_member_required
@require_GET
def staff_dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "staff/dashboard.html", {"summary": reproduction_summary()})


@require_GET
def restore_status(request: HttpRequest, image_id: int) -> JsonResponse:
    """Progress of re-rendering an evicted record (public, like the record itself)."""
    image = image_detail(image_id=image_id)
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


@login_required
@require_http_methods(["GET", "POST"])
def remix(request: HttpRequest, image_id: int) -> HttpResponse:
    image = image_detail(image_id=image_id)
    if image is None:
        raise Http404("No such image")
    if request.method == "POST":
        form = RecipeForm(request.POST)
        if form.is_valid():
            try:
                job = remix_submit(owner=request.user, parent=image, recipe=form.recipe())  # type: ignore[arg-type]
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                return redirect("job_detail", job_id=job.pk)
        status = 400
    else:
        form = RecipeForm(initial=RecipeForm.initial_from_image(image))
        status = 200
    context = {"form": form, "image": image, "model_problem": image_model_problem(image=image)}
    return render(request, "gallery/remix.html", context, status=status)
