"""The search page: words, meaning or both, filters, and image→image by upload or record."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from archive.selectors import PromptOnlyResults, prompt_only_search
from gallery import ratelimit
from gallery.forms.search import SEARCH_MAX_PAGES, SearchForm
from gallery.page_cache import anonymous_page_cache
from gallery.selectors import hits_by_likes, images_likes_mark, nsfw_left_out, viewer_hides_nsfw
from generator.selectors.records import image_detail
from search.models import EmbeddingModel
from search.selectors import (
    SearchFilters,
    SearchResults,
    active_embedding_model,
    image_vector,
    search_images,
    uploaded_image_vector,
)


def prompt_only_results(
    *, query: str, mode: str, filters: SearchFilters, model: EmbeddingModel
) -> PromptOnlyResults | None:
    """Imported prompts (no picture here) beside the records, for a search by words. A row
    knows no record fields (model here, owner, collection, verification…): a search narrowed
    by any filter but NSFW finds none of them."""
    if not query or replace(filters, nsfw="include").active:
        return None
    return prompt_only_search(
        query=query, model=model, mode=mode, nsfw=filters.nsfw, limit=PROMPT_ONLY_SHOWN
    )


# Prompt-only results shown under the records (the first page only: they are not paged).
PROMPT_ONLY_SHOWN = 8


def viewer_filters(filters: SearchFilters, *, viewer: Any) -> SearchFilters:
    """The filters with the viewer's NSFW choice: someone who hides NSFW records gets none,
    whatever the NSFW filter says ("only NSFW" then finds nothing: see viewer_hits)."""
    if viewer_hides_nsfw(viewer=viewer) and filters.nsfw == "include":
        return replace(filters, nsfw="exclude")
    return filters


def viewer_hits(results: SearchResults, *, viewer: Any, by_likes: bool) -> SearchResults:
    """The hits the viewer sees, in the order they asked for: by rank, or the ranked (hence
    relevant) hits by likes, most first."""
    hits = nsfw_left_out(results.hits, viewer=viewer, image_of=lambda hit: hit.image)
    if by_likes:
        hits = hits_by_likes(hits)
    return replace(results, hits=hits)


def search_limit(*, page_size: int, page_number: int, by_likes: bool) -> int:
    """How many ranked hits to read: n pages deep by rank; the whole bounded ranking when
    ordered by likes (each page must be a slice of the same order)."""
    return page_size * (SEARCH_MAX_PAGES if by_likes else page_number)


# The upload form POSTs only because files need a body: a search stores and changes nothing, so
# there is nothing to forge, and without a CSRF token the search page can be cached for
# anonymous visitors (gallery/page_cache.py). The per-address rate limit still applies.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
@anonymous_page_cache
def search_page(request: HttpRequest) -> HttpResponse:
    """GET with q (words) or like=<id>; POST with an uploaded image (image→image)."""
    searching = request.method == "POST" or any(request.GET.get(k) for k in ("q", "like"))
    # Counted before the form decodes an upload: decoding is the expensive part to refuse.
    if searching and (refused := ratelimit.search_refused(request)):
        return refused
    form = SearchForm(request.POST or request.GET, request.FILES or None)
    context: dict[str, Any] = {"form": form, "query": request.GET.get("q", "")}
    if not form.is_valid():
        return render(request, "search/results.html", context, status=400)
    data = form.cleaned_data
    typed, like, upload = data["q"].strip(), data.get("like"), data.get("image")
    # The words and phrases searched for; the box's filters are in form.filters().
    query = form.search_text()
    if not (typed or like or upload):
        return render(request, "search/results.html", context)
    model = active_embedding_model()  # read once for the whole search
    # Relevance has no stable keyset (fusion re-ranks, a new record moves every score), so a
    # search pages by rank: page n ranks n pages deep and shows the last one, bounded by
    # SEARCH_MAX_PAGES. The browse lists (gallery, a user's renders) page by keyset.
    page_size = settings.SEEDBANK_GALLERY_PAGE_SIZE
    page_number = data.get("page") or 1
    by_likes = data.get("sort") == "likes"
    options = {
        "embedding_model": model,
        "filters": viewer_filters(form.filters(), viewer=request.user),
        "limit": search_limit(page_size=page_size, page_number=page_number, by_likes=by_likes),
        "min_score": data.get("min_score"),
        "collapse_duplicates": data.get("collapse", False),
    }
    if upload is not None:
        results = search_images(
            vector=uploaded_image_vector(upload, model), mode="vector", **options
        )
        context["like_upload"] = True
    elif like:
        source = image_detail(image_id=like)
        vector = image_vector(source, model) if source else None
        results = (
            search_images(vector=vector, mode="vector", exclude_id=like, **options)
            if vector
            else SearchResults(hits=[])
        )
        context["like_image"] = source
    else:
        mode = data.get("mode") or "hybrid"
        results = search_images(query=query, mode=mode, **options)
        if page_number == 1:
            context["prompt_only"] = prompt_only_results(
                query=query, mode=mode, filters=options["filters"], model=model
            )
        if results.keyword_matches:  # the words meant nothing to the CLIP: offer keywords
            keywords = request.GET.copy()
            keywords["mode"] = "keyword"
            context["keyword_query"] = keywords.urlencode()
        if results.hidden_below_threshold:
            everything = request.GET.copy()
            everything["min_score"] = "-1"
            context["show_all_query"] = everything.urlencode()
    results = viewer_hits(results, viewer=request.user, by_likes=by_likes)
    context["results"] = results
    context["page_hits"] = results.hits[page_size * (page_number - 1) : page_size * page_number]
    images_likes_mark(images=[hit.image for hit in context["page_hits"]], viewer=request.user)
    if request.method != "POST" and len(results.hits) >= page_size * page_number:
        if page_number < SEARCH_MAX_PAGES:
            following = request.GET.copy()
            following["page"] = str(page_number + 1)
            context["next_query"] = following.urlencode()
    return render(request, "search/results.html", context)
