"""Generate form, job progress page, and the JSON render API."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config import ratelimit
from generator.forms import RecipeForm
from generator.selectors import job_for_viewer, job_payload
from generator.services import QuotaExceeded, render_job_create


def generation_refused(request: HttpRequest, *, as_json: bool = False) -> HttpResponse | None:
    """A 429 when this user submits faster than the generation rate limit, else None."""
    per_minute = settings.SEEDBANK_RATE_GENERATE_PER_MINUTE
    wait = ratelimit.hit(
        scope="generate", identity=ratelimit.client_identity(request), per_minute=per_minute
    )
    if wait is None:
        return None
    message = ratelimit.limit_message("render requests", per_minute, wait)
    return ratelimit.too_many_requests(request, message, retry_after=wait, as_json=as_json)


@login_required
@require_http_methods(["GET", "POST"])
def generate(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = RecipeForm(request.POST, request.FILES)
    else:
        form = RecipeForm(initial=_initial_from_record(request))
    if request.method == "POST" and (refused := generation_refused(request)):
        return refused
    if request.method == "POST" and form.is_valid():
        try:
            job = render_job_create(owner=request.user, recipe=form.recipe())  # type: ignore[arg-type]
        except ValidationError as exc:
            form.add_error(None, exc)
        except QuotaExceeded as exc:
            return ratelimit.too_many_requests(request, str(exc))
        else:
            return redirect("job_detail", job_id=job.pk)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "init_source": init_source(form)}
    return render(request, "generator/generate.html", context, status=status)


def init_source(form: RecipeForm) -> Any:
    """The stored init image the form points at, for the preview and the mask painter."""
    from gallery.models import SourceImage

    value = form["init_image_id"].value()
    if not str(value or "").isdigit():
        return None
    return SourceImage.objects.filter(pk=int(value), kind=SourceImage.Kind.INIT).first()


# "Use prompt / use seed / use all": which recipe fields a new image takes from a record.
USE_FIELDS = {
    "prompt": ("prompt", "negative_prompt"),
    "seed": ("seed",),
    "all": tuple(RecipeForm.base_fields),
}


def _initial_from_record(request: HttpRequest) -> dict[str, Any]:
    from gallery.selectors import image_detail
    from gallery.services import source_from_record

    init = request.GET.get("init", "")
    record = image_detail(image_id=int(init), viewer=request.user) if init.isdigit() else None
    if record is not None and record.image_file:  # "use as init image"
        return {
            "mode": "img2img",
            "init_image_id": source_from_record(image=record).pk,
            "strength": 0.6,
            "prompt": record.prompt,
            "width": record.width,
            "height": record.height,
        }
    source = request.GET.get("from", "")
    image = image_detail(image_id=int(source)) if source.isdigit() else None
    if image is None:
        return {}
    wanted = {
        name for use in request.GET.get("use", "all").split(",") for name in USE_FIELDS.get(use, ())
    }
    recipe = RecipeForm.initial_from_image(image)
    return {name: value for name, value in recipe.items() if name in wanted}


@require_GET
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = job_for_viewer(job_id=job_id, viewer=request.user)
    if job is None:
        raise Http404("No such job")
    return render(
        request, "generator/job_detail.html", {"job": job, "payload": job_payload(job=job)}
    )


@require_GET
def job_status(request: HttpRequest, job_id: int) -> JsonResponse:
    job = job_for_viewer(job_id=job_id, viewer=request.user)
    if job is None:
        return JsonResponse({"error": "No such job."}, status=404)
    return JsonResponse(job_payload(job=job))


@require_POST
def api_render_create(request: HttpRequest) -> JsonResponse:
    """POST a JSON recipe; 202 with the job, or 400 with errors by field. Session auth + CSRF."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Sign in to generate images."}, status=401)
    if refused := generation_refused(request, as_json=True):
        return refused
    try:
        payload = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JsonResponse({"errors": {"__all__": ["The body is not valid JSON."]}}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"errors": {"__all__": ["Send a JSON object."]}}, status=400)
    form = RecipeForm(data=payload)
    if not form.is_valid():
        return JsonResponse({"errors": _messages(form.errors.get_json_data())}, status=400)
    try:
        job = render_job_create(owner=request.user, recipe=form.recipe())  # type: ignore[arg-type]
    except ValidationError as exc:
        return JsonResponse({"errors": exc.message_dict}, status=400)
    except QuotaExceeded as exc:
        return ratelimit.too_many_requests(request, str(exc), as_json=True)
    return JsonResponse(job_payload(job=job), status=202)


def _messages(errors: dict[str, list[dict[str, str]]]) -> dict[str, list[str]]:
    return {name: [item["message"] for item in items] for name, items in errors.items()}
