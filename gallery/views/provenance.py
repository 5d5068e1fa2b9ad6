"""Check a picture (/check/): its Content Credentials, whether this archive holds it, its
recipe and whether Seedbank reproduced it; staff may queue a reproduction of the match."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from gallery import ratelimit
from gallery.forms.provenance import PictureCheckForm
from gallery.page_cache import anonymous_page_cache
from gallery.views.access import staff_refused
from generator.selectors.model_versions import image_model_problem
from generator.selectors.quotas import QuotaExceeded
from generator.selectors.records import image_detail
from generator.services.reproductions import reproduction_create


# Like the image search upload: a check stores and changes nothing, so there is nothing to
# forge, and without a CSRF token the empty form can be cached for anonymous visitors. The
# per-address rate limit still applies.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
@anonymous_page_cache
def check_page(request: HttpRequest) -> HttpResponse:
    """GET: the upload form (with ?image=<id>: the report on that record's stored file, as a
    visitor downloading it would get it); POST (multipart): the report, or the form with what
    is wrong."""
    record_id = request.GET.get("image", "")
    if request.method != "POST" and not record_id:
        return render(request, "gallery/check.html", {"form": PictureCheckForm()})
    # Counted before the upload is decoded: decoding is the expensive part to refuse.
    if refused := ratelimit.picture_check_refused(request):
        return refused
    if request.method == "POST":
        form = PictureCheckForm(request.POST, request.FILES, viewer=request.user)
        file_name = str(getattr(request.FILES.get("picture"), "name", "") or "")
    else:
        image = (
            image_detail(image_id=int(record_id), viewer=request.user)
            if record_id.isdigit() and len(record_id) <= 9  # an id Postgres can compare
            else None
        )
        if image is None or not image.image_file:
            raise Http404("No such image, or its picture is not stored")
        with image.image_file.open("rb") as handle:
            name = str(image.image_file.name).rsplit("/", 1)[-1]
            upload = SimpleUploadedFile(name, handle.read())
        form = PictureCheckForm({}, {"picture": upload}, viewer=request.user)
        file_name = name
    if not form.is_valid() or form.check is None:
        return render(request, "gallery/check.html", {"form": form}, status=400)
    check = form.check
    context = {
        "form": PictureCheckForm(),
        "check": check,
        "file_name": file_name,
        "recipe_json": (
            json.dumps(check.recipe, ensure_ascii=False, indent=2, default=str)
            if check.recipe is not None
            else ""
        ),
    }
    return render(request, "gallery/check.html", context)


@require_POST
def check_verify(request: HttpRequest, image_id: int) -> HttpResponse:
    """Staff: queue a reproduction check of a record a picture check matched."""
    if refused := staff_refused(request, what="Queueing a verification is"):
        return refused
    image = image_detail(image_id=image_id, viewer=request.user)
    if image is None:
        raise Http404("No such image")
    if problem := image_model_problem(image=image):
        messages.error(request, problem)
        return redirect("image_detail", image_id=image.pk)
    if refused := ratelimit.generation_refused(request):
        return refused
    try:
        reproduction_create(image=image, requested_by=request.user)  # type: ignore[arg-type]
    except QuotaExceeded as exc:
        return ratelimit.too_many_requests(request, str(exc))
    messages.success(
        request, gettext("A reproduction check is queued; its verdict will appear on this page.")
    )
    return redirect("image_detail", image_id=image.pk)
