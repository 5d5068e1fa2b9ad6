"""POST /renders (a recipe to render) and GET /jobs/{id} (its progress, images, verdict)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Router, Status
from ninja.security import django_auth

from engine.recipe import Recipe, input_fields, input_name
from gallery import ratelimit
from gallery.api.schemas import Errors, JobOut, Message, RecipeIn
from gallery.forms.uploads import stored_sources_errors
from gallery.payloads import job_payload
from generator.selectors.jobs import job_for_viewer
from generator.selectors.model_versions import model_version_by_id, model_version_resolve
from generator.selectors.quotas import QuotaExceeded
from generator.selectors.recipes import model_version_default
from generator.selectors.resources import recipe_resources_resolve
from generator.services.render_jobs import render_job_cancel, render_job_create

router = Router(tags=["renders"])


@router.post(
    "/renders",
    auth=django_auth,
    response={202: JobOut, 400: Errors, 401: Message, 429: Message},
    url_name="api_render_create",
    summary="Submit a recipe; the worker renders it",
    exclude_unset=True,
)
def render_create(request: HttpRequest, recipe: RecipeIn) -> Any:  # type: ignore[valid-type]
    """model_version defaults to the site's default model; absent scheduler, steps, guidance,
    width and height take that model's recommended values where it states them, other absent
    fields the recipe's defaults. Answers 202 with the job, 400 with errors by field, or 429
    (quota or rate limit)."""
    if refused := ratelimit.generation_refused(request, as_json=True):
        return refused
    values = {f.name: getattr(recipe, input_name(f)) for f in input_fields()}
    model = None
    if values["model_version_id"] is None:
        model = model_version_default()
        values["model_version_id"] = model.pk if model is not None else None
    elif isinstance(values["model_version_id"], int):
        model = model_version_by_id(model_id=values["model_version_id"])
    if model is not None:  # an unknown id is refused by the service, saying so
        given = recipe.model_fields_set  # type: ignore[attr-defined]
        values |= {name: v for name, v in model.sampling().items() if name not in given}
    resolved = recipe_resources_resolve(
        loras=[(lora.resource, lora.weight) for lora in values["loras"]], vae=values["vae"]
    )
    errors = dict(resolved.errors)
    errors |= stored_sources_errors(
        init_image_id=values["init_image_id"], mask_id=values["mask_id"], viewer=request.user
    )
    if values["refiner"]:
        # Named as people name models; the recipe keeps the weights digest.
        refiner = model_version_resolve(ref=values["refiner"])
        if refiner is None:
            errors["refiner"] = [
                gettext(
                    "Unknown refiner %(name)s; name a registered SDXL refiner or SDXL model "
                    "(name, name@revision or weights digest) that is not archived."
                )
                % {"name": repr(values["refiner"])}
            ]
        else:
            values["refiner"] = refiner.weights_digest
    if errors:
        return Status(400, {"errors": errors})
    hires = values["hires"]
    values.update(
        loras=resolved.loras,
        vae=resolved.vae,
        hires=hires.to_recipe() if hires is not None else None,
    )
    try:
        job = render_job_create(owner=request.user, recipe=Recipe(**values))  # type: ignore[arg-type]
    except DjangoValidationError as exc:
        return Status(400, {"errors": exc.message_dict})
    except QuotaExceeded as exc:
        return ratelimit.too_many_requests(request, str(exc), as_json=True)
    return Status(202, job_payload(job=job))


@router.post(
    "/jobs/{job_id}/cancel",
    auth=django_auth,
    response={200: JobOut, 401: Message, 404: Message, 409: Message},
    url_name="api_job_cancel",
    summary="Cancel a queued or running job (owner or staff)",
    exclude_unset=True,
)
def job_cancel(request: HttpRequest, job_id: int) -> Any:
    """A queued job never starts; a running one stops at its next progress write and stores
    nothing. 409 when the job has already finished."""
    job = job_for_viewer(job_id=job_id, viewer=request.user)  # type: ignore[arg-type]
    if job is None:
        return Status(404, {"error": "No such job."})
    if not render_job_cancel(job=job, by=request.user):  # type: ignore[arg-type]
        return Status(409, {"error": f"The job has already finished ({job.status})."})
    return job_payload(job=job)


@router.get(
    "/jobs/{job_id}",
    response={200: JobOut, 404: Message},
    url_name="api_job",
    summary="A job's progress, images and verdict (owner or staff)",
    exclude_unset=True,
)
def job_status(request: HttpRequest, job_id: int) -> Any:
    job = job_for_viewer(job_id=job_id, viewer=request.user)  # type: ignore[arg-type]
    if job is None:
        return Status(404, {"error": "No such job."})
    return job_payload(job=job)
