"""GET /search (Lexica's shape) and GET /images (recipes, scores, filters, cursor)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import resolve, reverse
from django.urls.exceptions import Resolver404
from ninja import Query, Router, Status

from archive.selectors import PromptOnlyHit, PromptOnlyResults
from engine.search_query import QueryError, parse_query
from gallery import ratelimit
from gallery.api.schemas import Errors, ImagesQuery, ImagesResponse, LexicaResponse, Message
from gallery.forms.search import SearchForm, query_filters
from gallery.selectors import images_likes_mark
from gallery.views.search import prompt_only_results, search_limit, viewer_filters, viewer_hits
from generator.i18n import translated
from generator.models import Image
from generator.selectors.records import image_by_file, image_detail
from search.selectors import (
    SearchFilters,
    SearchResults,
    active_embedding_model,
    image_vector,
    search_images,
)

router = Router(tags=["search"])


def _messages(errors: dict[str, list[dict[str, str]]]) -> dict[str, list[str]]:
    return {name: [item["message"] for item in items] for name, items in errors.items()}


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
        return image_by_file(name=match.kwargs["path"])
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


@router.get(
    "/search",
    response={200: LexicaResponse, 400: Message, 429: Message},
    url_name="api_lexica_search",
    summary="Lexica-compatible search (words, meaning, or an image URL)",
)
def lexica_search(
    request: HttpRequest,
    q: str = Query(
        "",
        description="words (with the search box's filters, e.g. seed:1010 steps:>30), "
        "or the URL of an image page/file on this site",
    ),
) -> Any:
    """GET /api/v1/search?q=… in Lexica's shape. q may be an image URL of this site."""
    query = q.strip()[:500]
    if not query:
        return Status(400, {"error": "Pass a search query as q."})
    if refused := ratelimit.search_refused(request, as_json=True):
        return refused
    source = _image_from_url(request, query) if "/" in query else None
    model = active_embedding_model()  # read once for the whole search
    viewer = request.user
    if source is not None:
        vector = image_vector(source, model)
        results = (
            search_images(
                vector=vector,
                mode="vector",
                limit=50,
                exclude_id=source.pk,
                embedding_model=model,
                filters=viewer_filters(SearchFilters(), viewer=viewer),
            )
            if vector
            else SearchResults(hits=[])
        )
    else:
        # The same language as the search box: words, "phrases", -words and field filters.
        try:
            parsed = parse_query(query)
        except QueryError as error:
            return Status(400, {"error": " ".join(translated(m) for m in error.messages)})
        results = search_images(
            query=parsed.text,
            mode="hybrid",
            limit=50,
            embedding_model=model,
            filters=viewer_filters(query_filters(parsed), viewer=viewer),
        )
    results = viewer_hits(results, viewer=viewer, by_likes=False)
    return {"images": [_lexica_image(request, hit.image) for hit in results.hits]}


@router.get(
    "/images",
    response={200: ImagesResponse, 400: Errors, 429: Message},
    url_name="api_images",
    summary="Ranked search with recipes, scores, filters and a cursor",
)
def images_api(request: HttpRequest, params: Query[ImagesQuery]) -> Any:  # type: ignore[type-arg]
    """The query schema documents and type-checks the parameters; the search form (the same as
    the search page's) then applies the choices that depend on the archive."""
    """GET /api/v1/images: ranked search with scores, filters and cursor pagination."""
    form = SearchForm(request.GET)
    if not form.is_valid():
        return Status(400, {"errors": _messages(form.errors.get_json_data())})
    if refused := ratelimit.search_refused(request, as_json=True):
        return refused
    data = form.cleaned_data
    try:
        offset = int(request.GET.get("cursor") or 0)
        limit = min(int(request.GET.get("limit") or 24), 100)
    except ValueError:
        return Status(400, {"errors": {"cursor": ["cursor and limit are integers"]}})
    if offset < 0 or limit < 1 or offset > 500:
        return Status(400, {"errors": {"cursor": ["cursor must be 0..500"]}})
    typed, like = data["q"].strip(), data.get("like")
    prompts: PromptOnlyResults | None = None
    query = form.search_text()  # the box's filters are in form.filters()
    viewer = request.user
    filters: SearchFilters = viewer_filters(form.filters(), viewer=viewer)
    model = active_embedding_model()  # read once for the whole search
    # By likes: the same bounded ranking as the search page's, reordered, and paged through;
    # by rank: as deep as this page.
    by_likes = data.get("sort") == "likes"
    window = search_limit(
        page_size=settings.SEEDBANK_GALLERY_PAGE_SIZE, page_number=1, by_likes=True
    )
    depth = window if by_likes else offset + limit
    if like:
        source = image_detail(image_id=like)
        vector = image_vector(source, model) if source else None
        results = (
            search_images(vector=vector, mode="vector", filters=filters, limit=depth,
                          exclude_id=like, min_score=data.get("min_score"),
                          embedding_model=model)
            if vector else SearchResults(hits=[])
        )  # fmt: skip
    elif typed:
        mode = data.get("mode") or "hybrid"
        results = search_images(
            embedding_model=model,
            query=query,
            mode=mode,
            filters=filters,
            limit=depth,
            min_score=data.get("min_score"),
        )
        if offset == 0:
            prompts = prompt_only_results(query=query, mode=mode, filters=filters, model=model)
    else:
        return Status(400, {"errors": {"q": ["Pass q (words) or like (an image id)."]}})
    results = viewer_hits(results, viewer=viewer, by_likes=by_likes)
    page = results.hits[offset : offset + limit]
    images_likes_mark(images=[hit.image for hit in page], viewer=viewer)
    if by_likes:
        more = len(results.hits) > offset + limit
    else:
        more = len(results.hits) == offset + limit and offset + limit <= 500
    return {
        "results": [
            {
                "kind": "record",
                "id": hit.image.pk,
                "url": request.build_absolute_uri(reverse("image_detail", args=[hit.image.pk])),
                "src": request.build_absolute_uri(hit.image.display_url),
                "pixel_sha256": hit.image.pixel_sha256,
                "recipe": hit.image.recipe_portable(),
                "scores": {
                    "rank": hit.score,
                    "cosine": hit.vector_score,
                    "keyword": hit.keyword_score,
                },
                "variants": hit.image.variants,
                "nsfw": hit.image.nsfw,
                "likes": getattr(hit.image, "likes", 0),
            }
            for hit in page
        ],
        "prompt_only": [_prompt_only(request, hit) for hit in (prompts.hits if prompts else [])],
        "hidden_below_threshold": results.hidden_below_threshold,
        "threshold": results.threshold,
        "reason": (
            "some_words" if results.some_words else "no_meaning" if results.no_meaning else None
        ),
        "keyword_matches": results.keyword_matches,
        "matched_words": results.some_words,
        "unmatched_words": results.missing_words,
        "next_cursor": str(offset + limit) if more else None,
    }


def _prompt_only(request: HttpRequest, hit: PromptOnlyHit) -> dict[str, Any]:
    row = hit.source_prompt
    return {
        "kind": "prompt_only",
        "id": row.pk,
        "prompt": row.prompt,
        "negative_prompt": row.negative_prompt,
        "tool": row.source.tool,
        "location": row.source.location,
        "reason": row.source.reason or row.source.get_state_display(),
        "nsfw": row.nsfw,
        "render_url": request.build_absolute_uri(f"{reverse('generate')}?prompt_of={row.pk}"),
        "scores": {"rank": hit.score, "cosine": hit.vector_score, "keyword": hit.keyword_score},
    }
