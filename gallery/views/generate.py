"""The generate form and the job progress page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from archive.models import SourcePrompt
from archive.selectors import source_prompt_find
from archive.services.prompts import source_prompt_render
from engine.recipe import Recipe
from gallery import ratelimit
from gallery.forms.recipe import RecipeForm
from gallery.payloads import job_payload
from generator.models import RenderJob
from generator.selectors.jobs import job_cancellable_by, job_for_viewer, job_images
from generator.selectors.quotas import QuotaExceeded, quota_check
from generator.selectors.recipes import source_image_find, source_usable
from generator.selectors.records import image_detail
from generator.services.render_jobs import render_job_cancel, render_job_create


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def generate(request: HttpRequest) -> HttpResponse:
    # "Render this prompt with a model here": an imported row's prompt, rendered as a new record
    # whose lineage points at the row (archive.services.prompts).
    prompt_of = (request.POST if request.method == "POST" else request.GET).get("prompt_of", "")
    source_prompt = source_prompt_find(source_id=int(prompt_of)) if prompt_of.isdigit() else None
    if prompt_of and source_prompt is None:
        raise Http404("No such imported prompt")
    if request.method == "POST":
        form = RecipeForm(request.POST, request.FILES, viewer=request.user)
    elif source_prompt is not None:
        form = RecipeForm(initial=_initial_from_prompt(source_prompt), viewer=request.user)
    else:
        form = RecipeForm(initial=_initial_from_record(request), viewer=request.user)
    if request.method == "POST" and (refused := ratelimit.generation_refused(request)):
        return refused
    if request.method == "POST" and form.is_valid():
        submitted = submit_recipe(
            request,
            form,
            lambda recipe: (
                render_job_create(owner=request.user, recipe=recipe)  # type: ignore[arg-type]
                if source_prompt is None
                else source_prompt_render(
                    owner=request.user, source=source_prompt.source, recipe=recipe
                )
            ),
        )
        if submitted is not None:
            return submitted
    status = 400 if request.method == "POST" else 200
    context = {
        "form": form,
        "init_source": init_source(form, request.user),
        "source_prompt": source_prompt,
    }
    return render(request, "generator/generate.html", context, status=status)


def submit_recipe(
    request: HttpRequest, form: RecipeForm, submit: Callable[[Recipe], RenderJob]
) -> HttpResponse | None:
    """Send a valid recipe form to `submit`: the job page, a 429 over quota, or None with the
    refusal added to the form (the caller shows it again)."""
    try:
        # Checked before the form stores uploads: a refused render leaves nothing behind.
        quota_check(
            user=request.user,  # type: ignore[arg-type]
            renders=form.cleaned_data.get("batch_size") or 1,
            cost=form.cost(),
        )
        job = submit(form.recipe())
    except ValidationError as exc:
        _add_errors(form, exc)
        return None
    except QuotaExceeded as exc:
        return ratelimit.too_many_requests(request, str(exc))
    return redirect("job_detail", job_id=job.pk)


# The services name a stored input by its recipe field, the form by its own.
_FORM_FIELDS = {"init_image": "init_image_id", "mask": "mask_id"}


def _add_errors(form: RecipeForm, exc: ValidationError) -> None:
    """The service's refusal on the form, each message by the form's field where it has one
    (add_error refuses a name the form does not have)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for name, errors in exc.error_dict.items():
        field = _FORM_FIELDS.get(name, name)
        form.add_error(field if field in form.fields else None, errors)


@dataclass(frozen=True)
class InitPreview:
    url: str
    width: int
    height: int


def init_source(form: RecipeForm, viewer: Any) -> InitPreview | None:
    """The init image the form points at (a stored source, or a record to use), for the preview
    and the mask painter."""
    record_id = form["init_record"].value()
    if str(record_id or "").isdigit():
        record = image_detail(image_id=int(record_id), viewer=viewer)
        if record is not None and record.image_file:
            return InitPreview(record.image_file.url, record.width, record.height)
    source = source_image_find(source_id=form["init_image_id"].value(), kind="init")
    # An id is typed into a form as easily as any other value: someone else's upload is not
    # previewed (its name and size are theirs), as it is not served (gallery.views.media).
    if source is None or not source_usable(source_id=source.pk, kind="init", user=viewer):
        return None
    return InitPreview(source.file.url, source.width, source.height)


# "Use prompt / use seed / use all": which recipe fields a new image takes from a record.
USE_FIELDS = {
    "prompt": ("prompt", "negative_prompt"),
    "seed": ("seed",),
    "all": tuple(RecipeForm.base_fields),
}


def _initial_from_prompt(source_prompt: SourcePrompt) -> dict[str, Any]:
    """The form's values from what an imported row says: its prompts, and what it gives of
    seed, steps, guidance, size and scheduler (the model is the visitor's choice)."""
    known = {
        name: value for name, value in source_prompt.known.items() if name in RecipeForm.base_fields
    }
    return {
        **known,
        "prompt": source_prompt.prompt,
        "negative_prompt": source_prompt.negative_prompt,
    }


def _initial_from_record(request: HttpRequest) -> dict[str, Any]:
    init = request.GET.get("init", "")
    record = image_detail(image_id=int(init), viewer=request.user) if init.isdigit() else None
    if record is not None and record.image_file:  # "use as init image"
        return {
            "mode": "img2img",
            "init_record": record.pk,
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


@require_safe
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = job_for_viewer(job_id=job_id, viewer=request.user)
    if job is None:
        raise Http404("No such job")
    images = job_images(job=job)
    context = {
        "job": job,
        "payload": job_payload(job=job, images=images),
        # Every image of a render job shares one recipe but its seed: the first one shows it.
        "recipe": images[0] if images else None,
        "can_cancel": job_cancellable_by(job=job, user=request.user),
        "job_statuses": RenderJob.Status.choices,
    }
    return render(request, "generator/job_detail.html", context)


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = job_for_viewer(job_id=job_id, viewer=request.user)
    if job is None:
        raise Http404("No such job")
    if render_job_cancel(job=job, by=request.user):  # type: ignore[arg-type]
        messages.success(request, gettext("Job cancelled: nothing of it is stored."))
    else:
        messages.info(
            request,
            gettext("The job had already finished (%(status)s).")
            % {"status": job.get_status_display()},
        )
    return redirect("job_detail", job_id=job.pk)


@require_safe
def job_status(request: HttpRequest, job_id: int) -> JsonResponse:
    job = job_for_viewer(job_id=job_id, viewer=request.user)
    if job is None:
        return JsonResponse({"error": "No such job."}, status=404)
    return JsonResponse(job_payload(job=job))
