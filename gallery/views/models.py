"""The public page of a model version: what it is, where it came from, what it rendered."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import get_language
from django.views.decorators.http import require_safe

from gallery.page_cache import anonymous_page_cache
from generator.selectors.model_versions import (
    MODEL_PAGE_IMAGES,
    model_version_images,
    model_version_page,
)


@require_safe
@anonymous_page_cache
def model_detail(request: HttpRequest, model_id: int) -> HttpResponse:
    model_version = model_version_page(model_id=model_id)
    if model_version is None:
        raise Http404("No such model.")
    images = model_version_images(model_version=model_version)
    return render(
        request,
        "generator/model_detail.html",
        {
            "model_version": model_version,
            "images": images,
            "image_limit": MODEL_PAGE_IMAGES,
            "vocabulary": model_version.vocabulary_in(get_language() or settings.LANGUAGE_CODE),
            # Shortest exact form ("0.3", not floatformat's padded "0.3000"): it is the recipe.
            "blend_weights": (
                (f"{alpha:g}", f"{1 - alpha:g}")
                if (alpha := model_version.blend_alpha) is not None
                else None
            ),
        },
    )
