"""search_images: one query (words or a vector) through the vector and keyword lists, fused,
bounded by the model's relevance and nonsense cosines, variants folded into one result; some of
the words when none matches them all."""

from __future__ import annotations

from django.db.models import QuerySet

from generator.models import Image
from generator.selectors.records import images_public
from generator.selectors.variants import VariantGroups, variants_count
from search.models import EmbeddingModel
from search.selectors import query_vectors
from search.selectors.duplicates import collapse_near_duplicates
from search.selectors.embedding_models import (
    active_embedding_model,
    nonsense_bound,
    relevance_bound,
)
from search.selectors.filters import SearchFilters
from search.selectors.fusion import reciprocal_rank_fusion
from search.selectors.hits import SearchHit, SearchResults
from search.selectors.keyword import keyword_matches_counted, keyword_ranked
from search.selectors.side_by_side import side_by_side
from search.selectors.some_words import SomeWords, some_words_ranked
from search.selectors.vector import vector_ranked

CANDIDATES = 100  # how deep each list goes before fusion


def search_images(
    *,
    query: str = "",
    vector: list[float] | None = None,
    mode: str = "hybrid",
    filters: SearchFilters | None = None,
    limit: int = 24,
    min_score: float | None = None,
    exclude_id: int | None = None,
    collapse_duplicates: bool = False,
    embedding_model: EmbeddingModel | None = None,
) -> SearchResults:
    """Ranked records for a text query (vector, keyword or hybrid) or a query vector (image).

    min_score is a cosine bound: vector matches below it are hidden (and counted); keyword
    matches are kept, since they match words the user typed. A search by words that names no
    bound gets the model's relevance_bound (pass -1 to see everything); a search by image gets
    none, since its nearest records are what was asked for.
    """
    filters = filters or SearchFilters()
    model = embedding_model or active_embedding_model()  # read once per search
    # Only a search by words with the model's own bounds: min_score -1 shows every match.
    judged = min_score is None and vector is None and bool(query)
    if judged:
        min_score = relevance_bound(model)
    unexcluded = filters.apply(images_public())
    candidates = unexcluded if exclude_id is None else unexcluded.exclude(pk=exclude_id)
    # Fusion needs each list deeper than the page (a record low in one list may be high in the
    # other); a list shown as it is needs just the page: at a 1 % filter the iterative HNSW
    # scan visits ~100 index tuples per row it returns.
    depth = limit if mode == "vector" and not collapse_duplicates else max(limit, CANDIDATES)
    variants = VariantGroups()  # one result per recipe but the seed
    wants_vector = mode in {"vector", "hybrid"} and (vector is not None or bool(query))
    wants_keyword = mode in {"keyword", "hybrid"} and bool(query) and vector is None

    def vector_side() -> tuple[list[tuple[int, float]], str]:
        if not wants_vector:
            return [], ""
        query_vector = (
            vector if vector is not None else query_vectors.query_text_vector(query, model)
        )
        return _vector_list(
            query_vector,
            unexcluded,
            depth=depth,
            limit=limit,
            filtered=filters.active,
            chinese_prompts=filters.chinese_prompts,
            model_name=model.name,
            exclude_id=exclude_id,
            variants=variants,
        )

    def keyword_side() -> list[tuple[int, float]]:
        return keyword_ranked(query, candidates, limit=depth) if wants_keyword else []

    # Hybrid's two lists are independent: each on its own connection when it may.
    (vector_list, strategy), keyword_list = (
        side_by_side(vector_side, keyword_side)
        if wants_vector and wants_keyword
        else (vector_side(), keyword_side())
    )
    # Words with no meaning for the model ("qwxzv florbin gnark") still have nearest pictures:
    # when even the best is under the model's nonsense bound, nothing matches by meaning.
    nonsense = nonsense_bound(model) if judged else None
    no_meaning = bool(vector_list) and nonsense is not None and vector_list[0][1] < nonsense
    if no_meaning:
        vector_list = []
    keyword_matches = 0
    if no_meaning and not wants_keyword:  # offered instead of the vector matches
        keyword_matches = keyword_matches_counted(query, candidates, limit=depth)
    # Filters alone (the search box's "seed:1010", "-blurry"): the matching records, newest
    # first, in whichever mode.
    browsed = (
        [(pk, 0.0) for pk in candidates.order_by("-id").values_list("pk", flat=True)[:depth]]
        if vector is None and not query and filters.active
        else []
    )

    cosine = dict(vector_list)
    keyword = dict(keyword_list)
    hidden = {
        pk
        for pk, score in vector_list
        if min_score is not None and score < min_score and pk not in keyword
    }
    vector_list = [(pk, score) for pk, score in vector_list if pk not in hidden]
    if browsed:
        ordered = browsed
    elif mode == "keyword" or (mode == "hybrid" and not vector_list):
        ordered = keyword_list
    elif mode == "vector" or not keyword_list:
        ordered = vector_list
    else:
        ordered = sorted(
            reciprocal_rank_fusion(vector_list, keyword_list).items(), key=lambda item: -item[1]
        )

    # Nothing matched the words as a whole ("red cat": red things and cats, no red cat):
    # the records matching some of them, as a search engine falls back to.
    partial = SomeWords()
    if not ordered and not hidden and not keyword_matches and query and vector is None:
        partial = some_words_ranked(
            query,
            candidates,
            mode=mode,
            model=model,
            limit=depth,
            filtered=filters.active,
            chinese_prompts=filters.chinese_prompts,
            min_score=min_score,
        )
        ordered, cosine, keyword = partial.ranked, partial.cosine, partial.keyword

    ordered = variants.first_of_each(ordered)  # the best-ranked record of each group
    # Only the rows shown are loaded (all ranked ones when near-duplicates may fold some away).
    shown = ordered if collapse_duplicates else ordered[:limit]
    # Each card's group size comes with its row (one index probe each): a second statement
    # for them cost ~1 ms more per search at 1M records.
    records = (
        Image.objects.listing()
        .annotate(variant_members=variants_count(images_public()))
        .in_bulk([pk for pk, _ in shown])
    )
    for image in records.values():
        image.variants = getattr(image, "variant_members", None) or 1
    hits = [
        SearchHit(
            image=records[pk],
            score=score,
            vector_score=cosine.get(pk),
            keyword_score=keyword.get(pk),
        )
        for pk, score in shown
        if pk in records
    ]
    if collapse_duplicates:
        hits = collapse_near_duplicates(hits, model)
    return SearchResults(
        hits=hits[:limit],
        hidden_below_threshold=len(hidden),
        strategy=strategy,
        threshold=min_score if vector_list or hidden else None,
        no_meaning=no_meaning,
        keyword_matches=keyword_matches,
        some_words=partial.words,
        missing_words=partial.missing,
    )


def _vector_list(
    query_vector: list[float],
    unexcluded: QuerySet[Image],
    *,
    depth: int,
    limit: int,
    filtered: bool,
    chinese_prompts: bool,
    model_name: str,
    exclude_id: int | None,
    variants: VariantGroups,
) -> tuple[list[tuple[int, float]], str]:
    """The `depth` nearest records and the strategy that found them."""
    vector_list: list[tuple[int, float]] = []
    strategy = ""
    # Leaving out one record (a record page's own) is not a filter: ask the index for one
    # more and drop it, rather than counting the table and maybe searching exactly.
    for deeper in (1, 4):
        vector_list, strategy = vector_ranked(
            query_vector,
            unexcluded,
            limit=depth * deeper + 1,
            filtered=filtered,
            chinese_prompts=chinese_prompts,
            model_name=model_name,
        )
        vector_list = [(pk, s) for pk, s in vector_list if pk != exclude_id][: depth * deeper]
        # Variants (a batch, a seed sweep) fold into one result: a vector list as deep as
        # the page that folds short of it is asked again, deeper (rare: one more query).
        if depth > limit or len(vector_list) < depth * deeper:
            break
        if len(variants.first_of_each(vector_list)) >= limit:
            break
    return vector_list, strategy
