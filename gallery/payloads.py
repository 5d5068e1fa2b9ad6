"""JSON shapes the pages and the API share: a job with its images (and verdict), a record with
its likes."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from generator.models import Image, RenderJob
from generator.selectors.jobs import job_images, job_queue_place


def _queue(job: RenderJob) -> dict[str, Any] | None:
    place = job_queue_place(job=job)
    if place is None:
        return None
    return {
        "ahead": place.ahead,
        "running": place.running,
        "estimate_seconds": None
        if place.estimate_seconds is None
        else round(place.estimate_seconds, 1),
    }


def job_payload(*, job: RenderJob, images: list[Image] | None = None) -> dict[str, Any]:
    """The job as JSON; `images` are its records when the caller has them already."""
    if images is None:
        images = job_images(job=job)
    payload: dict[str, Any] = {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "progress": {"step": job.progress_step, "total": job.progress_total},
        "queue": _queue(job),
        "error": job.error,
        "render_seconds": job.render_seconds,
        "url": reverse("job_detail", args=[job.pk]),
        "images": [
            {
                "id": image.pk,
                "status": image.status,
                "seed": image.seed,
                "pixel_sha256": image.pixel_sha256,
                "url": reverse("image_detail", args=[image.pk]),
                "src": image.image_file.url if image.image_file else None,
            }
            for image in images
        ],
    }
    reproduction = getattr(job, "reproduction", None) if job.kind == job.Kind.REPRODUCE else None
    if reproduction is not None:
        payload["reproduction"] = {
            "id": reproduction.pk,
            "image_id": reproduction.image_id,
            "verdict": reproduction.verdict,
            "pixel_sha256": reproduction.pixel_sha256,
            "original_sha256": reproduction.image.pixel_sha256,
            "max_abs_diff": reproduction.max_abs_diff,
            "psnr": reproduction.psnr,
            "environment_diff": reproduction.environment_diff,
            "src": reproduction.image_file.url if reproduction.image_file else None,
        }
    return payload


def record_payload(*, request: HttpRequest, image: Image) -> dict[str, Any]:
    """A record as the API shows it outside search: its recipe, its NSFW flag and its likes
    (`image.likes` and `image.liked`, set by gallery.selectors.images_likes_mark)."""
    return {
        "kind": "record",
        "id": image.pk,
        "url": request.build_absolute_uri(reverse("image_detail", args=[image.pk])),
        "src": request.build_absolute_uri(image.display_url),
        "pixel_sha256": image.pixel_sha256,
        "recipe": image.recipe_portable(),
        "nsfw": image.nsfw,
        "likes": getattr(image, "likes", 0),
        "liked": getattr(image, "liked", False),
    }
