"""Browse, search, record detail and remix."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from archive.selectors import image_prompt_source
from archive.services.exports import export_zip
from engine.export import export_script
from gallery import ratelimit
from gallery.charts import bar_chart
from gallery.forms.recipe import RecipeForm
from gallery.page_cache import anonymous_page_cache
from gallery.selectors import (
    collection_detail,
    collection_images,
    collections_with_covers,
    gallery_page,
)
from gallery.services import remix_submit
from gallery.views.access import staff_refused
from gallery.views.generate import init_source, submit_recipe
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
    reproduction_summary,
    user_renders,
)
from generator.selectors.stats import job_cost_usd, render_stats
from generator.services.reproductions import image_restore_request
from search.selectors import image_neighbours


@require_safe
@anonymous_page_cache
def home(request: HttpRequest) -> HttpResponse:
    if request.GET.get("q", "").strip():  # the header's search box works from any page
        return search_page(request)
    cursor = request.GET.get("before")
    page = gallery_page(cursor=cursor, page_size=settings.SEEDBANK_GALLERY_PAGE_SIZE)
    collections = collections_with_covers(viewer=None, limit=12) if not cursor else []
    return render(request, "gallery/home.html", {"page": page, "collections": collections})


@require_safe
@anonymous_page_cache
def detail(request: HttpRequest, image_id: int) -> HttpResponse:
    image = image_detail(image_id=image_id, viewer=request.user)
    if image is None:
        raise Http404("No such image")
    restore = image_pending_restore(image=image)  # a page view never queues work
    neighbours = image_neighbours(image=image)
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
        "variants": image_variants(image=image, viewer=request.user),
        "similar": neighbours.similar,
        "near_duplicates": neighbours.near_duplicates,
        "near_duplicate_bound": neighbours.bound,
        "last_reproduction": image_last_reproduction(image=image),
        "cost": _image_cost(image),
        # Only SDXL records with a refiner pay for the lookup.
        "refiner_model": (model_version_by_digest(digest=image.refiner) if image.refiner else None),
    }
    return render(request, "gallery/detail.html", context)


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


@require_safe
def staff_dashboard(request: HttpRequest) -> HttpResponse:
    if refused := staff_refused(request, what="The dashboard is"):
        return refused
    stats = render_stats(days=14)
    context = {
        "summary": reproduction_summary(),
        "stats": stats,
        "image_chart": bar_chart([(d.day, d.images) for d in stats.days], digits=0),
        "seconds_chart": bar_chart([(d.day, d.render_seconds) for d in stats.days], digits=1),
        "cost_chart": bar_chart([(d.day, d.cost_usd) for d in stats.days], digits=4),
    }
    return render(request, "staff/dashboard.html", context)


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


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def remix(request: HttpRequest, image_id: int) -> HttpResponse:
    image = image_detail(image_id=image_id, viewer=request.user)
    if image is None:
        raise Http404("No such image")
    if request.method == "POST":
        if refused := ratelimit.generation_refused(request):
            return refused
        form = RecipeForm(request.POST, request.FILES, viewer=request.user)
        if form.is_valid():
            submitted = submit_recipe(
                request,
                form,
                lambda recipe: remix_submit(owner=request.user, parent=image, recipe=recipe),  # type: ignore[arg-type]
            )
            if submitted is not None:
                return submitted
        status = 400
    else:
        form = RecipeForm(initial=RecipeForm.initial_from_image(image), viewer=request.user)
        status = 200
    context = {
        "form": form,
        "image": image,
        "model_problem": image_model_problem(image=image),
        "init_source": init_source(form, request.user),
    }
    return render(request, "gallery/remix.html", context, status=status)


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


@require_safe
@anonymous_page_cache
def collection(request: HttpRequest, slug: str) -> HttpResponse:
    found = collection_detail(slug=slug, viewer=request.user)
    if found is None:  # private collections do not exist for non-staff
        raise Http404("No such collection")
    images = collection_images(collection=found, viewer=request.user)
    return render(request, "gallery/collection.html", {"collection": found, "images": images})


@require_safe
@anonymous_page_cache
def user_page(request: HttpRequest, username: str) -> HttpResponse:
    page = user_renders(
        username=username,
        viewer=request.user,
        cursor=request.GET.get("before"),
        page_size=settings.SEEDBANK_GALLERY_PAGE_SIZE,
    )
    if page is None:
        raise Http404("No such user")
    return render(request, "gallery/user.html", {"username": username, "page": page})


@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and (refused := ratelimit.signup_refused(request)):
        return refused
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        # Signed in by the password it was just given: no need to ask axes' backend first.
        auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(
        request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200
    )


def _image_cost(image: Image) -> dict[str, object] | None:
    """This image's share of its job's render time and cost (a batch splits them evenly)."""
    job = image.job
    if job is None or job.render_seconds is None:
        return None
    share = max(1, image.batch_size)
    cost = job_cost_usd(job=job)
    return {
        "seconds": job.render_seconds / share,
        "device": job.device,
        "usd": None if cost is None else cost / share,
    }
