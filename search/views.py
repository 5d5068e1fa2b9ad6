"""Search pages and APIs: the search page, Lexica-compatible search, the richer images API."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import resolve, reverse
from django.urls.exceptions import Resolver404
from django.views.decorators.http import require_GET, require_http_methods

from config import ratelimit
from gallery.models import Image
from gallery.selectors import image_detail, image_recipe
from search.forms import SearchForm
from search.selectors import (
    SearchFilters,
    SearchResults,
    image_vector,
    search_images,
    uploaded_image_vector,
)


def _limited(request: HttpRequest, *, as_json: bool) -> HttpResponse | None:
    per_minute = settings.SEEDBANK_RATE_SEARCH_PER_MINUTE
    wait = ratelimit.hit(
        scope="search", identity=ratelimit.client_identity(request), per_minute=per_minute
    )
    if wait is None:
        return None
    message = ratelimit.limit_message("searches", per_minute, wait)
    return ratelimit.too_many_requests(request, message, retry_after=wait, as_json=as_json)


@require_http_methods(["GET", "POST"])
def search_page(request: HttpRequest) -> HttpResponse:
    """GET with q (words) or like=<id>; POST with an uploaded image (image→image)."""
    form = SearchForm(request.POST or request.GET, request.FILES or None)
    context: dict[str, Any] = {"form": form, "query": request.GET.get("q", "")}
    if not form.is_valid():
        return render(request, "search/results.html", context, status=400)
    data = form.cleaned_data
    query, like, upload = data["q"].strip(), data.get("like"), data.get("image")
    if not (query or like or upload):
        return render(request, "search/results.html", context)
    if refused := _limited(request, as_json=False):
        return refused
    options = {
        "filters": form.filters(),
        "limit": settings.SEEDBANK_GALLERY_PAGE_SIZE,
        "min_score": data.get("min_score"),
        "collapse_duplicates": data.get("collapse", False),
    }
    if upload is not None:
        results = search_images(vector=uploaded_image_vector(upload), mode="vector", **options)
        context["like_upload"] = True
    elif like:
        source = image_detail(image_id=like)
        vector = image_vector(source) if source else None
        results = (
            search_images(vector=vector, mode="vector", exclude_id=like, **options)
            if vector
            else SearchResults(hits=[])
        )
        context["like_image"] = source
    else:
        results = search_images(query=query, mode=data.get("mode") or "hybrid", **options)
    context["results"] = results
    return render(request, "search/results.html", context)


# --- APIs ------------------------------------------------------------------------------------


def _image_from_url(request: HttpRequest, value: str) -> Image | None:
    """A record named by a URL of this site: its page (/images/7/) or its media file."""
    path = value
    host = request.get_host()
    for prefix in (f"http://{host}", f"https://{host}"):
        if value.startswith(prefix):
            path = value[len(prefix) :]
    if not path.startswith("/"):
        return None
    try:
        match = resolve(path.split("?")[0])
    except Resolver404:
        return None
    if match.url_name == "image_detail":
        return image_detail(image_id=int(match.kwargs["image_id"]))
    if match.url_name == "media":
        return (
            Image.objects.filter(image_file=match.kwargs["path"], status=Image.Status.READY)
            .filter(hidden=False)
            .first()
        )
    return None


def _lexica_image(request: HttpRequest, image: Image) -> dict[str, Any]:
    src = request.build_absolute_uri(image.display_url)
    return {
        "id": str(image.pk),
        "gallery": request.build_absolute_uri(reverse("image_detail", args=[image.pk])),
        "src": src,
        "srcSmall": request.build_absolute_uri(image.thumbnail.url) if image.thumbnail else src,
        "prompt": image.prompt,
        "width": image.width,
        "height": image.height,
        "seed": str(image.seed),  # Lexica sends seeds as strings
        "grid": False,
        "model": image.model_name,
        "guidance": image.guidance,
        "promptid": str(image.pk),
        "nsfw": image.nsfw,
    }


@require_GET
def lexica_search(request: HttpRequest) -> JsonResponse:
    """GET /api/v1/search?q=… in Lexica's shape. q may be an image URL of this site."""
    query = request.GET.get("q", "").strip()[:500]
    if not query:
        return JsonResponse({"error": "Pass a search query as q."}, status=400)
    if refused := _limited(request, as_json=True):
        return refused  # type: ignore[return-value]
    source = _image_from_url(request, query) if "/" in query else None
    if source is not None:
        vector = image_vector(source)
        results = (
            search_images(vector=vector, mode="vector", limit=50, exclude_id=source.pk)
            if vector
            else SearchResults(hits=[])
        )
    else:
        results = search_images(query=query, mode="hybrid", limit=50)
    return JsonResponse({"images": [_lexica_image(request, hit.image) for hit in results.hits]})


@require_GET
def images_api(request: HttpRequest) -> JsonResponse:
    """GET /api/v1/images: ranked search with scores, filters and cursor pagination."""
    form = SearchForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    if refused := _limited(request, as_json=True):
        return refused  # type: ignore[return-value]
    data = form.cleaned_data
    try:
        offset = int(request.GET.get("cursor") or 0)
        limit = min(int(request.GET.get("limit") or 24), 100)
    except ValueError:
        return JsonResponse({"errors": {"cursor": ["cursor and limit are integers"]}}, status=400)
    if offset < 0 or limit < 1 or offset > 500:
        return JsonResponse({"errors": {"cursor": ["cursor must be 0..500"]}}, status=400)
    query, like = data["q"].strip(), data.get("like")
    filters: SearchFilters = form.filters()
    if like:
        source = image_detail(image_id=like)
        vector = image_vector(source) if source else None
        results = (
            search_images(vector=vector, mode="vector", filters=filters, limit=offset + limit,
                          exclude_id=like, min_score=data.get("min_score"))
            if vector else SearchResults(hits=[])
        )  # fmt: skip
    elif query:
        results = search_images(
            query=query,
            mode=data.get("mode") or "hybrid",
            filters=filters,
            limit=offset + limit,
            min_score=data.get("min_score"),
        )
    else:
        return JsonResponse({"errors": {"q": ["Pass q (words) or like (an image id)."]}}, 400)
    page = results.hits[offset : offset + limit]
    more = len(results.hits) == offset + limit and offset + limit <= 500
    return JsonResponse(
        {
            "results": [
                {
                    "id": hit.image.pk,
                    "url": request.build_absolute_uri(reverse("image_detail", args=[hit.image.pk])),
                    "src": request.build_absolute_uri(hit.image.display_url),
                    "pixel_sha256": hit.image.pixel_sha256,
                    "recipe": image_recipe(image=hit.image),
                    "scores": {
                        "rank": hit.score,
                        "cosine": hit.vector_score,
                        "keyword": hit.keyword_score,
                    },
                }
                for hit in page
            ],
            "hidden_below_threshold": results.hidden_below_threshold,
            "next_cursor": str(offset + limit) if more else None,
        }
    )


@require_GET
def openapi_schema(request: HttpRequest) -> JsonResponse:
    from search.openapi import schema

    return JsonResponse(schema())
