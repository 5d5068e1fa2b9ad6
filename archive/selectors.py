"""Reads for imports: a run's problems, the sources a verification sweep should check."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min, QuerySet

from archive.models import ImportProblem, ImportRun, PromptRender, SourcePrompt, SourceRecord
from engine.keywords import segment
from generator.models import Image
from generator.selectors.records import image_last_reproduction
from search.models import EmbeddingModel
from search.selectors import (
    CLIP_CONFIG,
    KEYWORD_TSQUERY,
    query_text_vector,
    reciprocal_rank_fusion,
)


def import_problems(*, run: ImportRun, limit: int = 1000) -> list[ImportProblem]:
    return list(ImportProblem.objects.filter(run=run).order_by("id")[:limit])


def import_problems_count(*, run: ImportRun) -> int:
    return ImportProblem.objects.filter(run=run).count()


def import_runs() -> QuerySet[ImportRun]:
    return ImportRun.objects.order_by("-created_at")


def imported_images_to_verify() -> QuerySet[Image]:
    """Records imported with their picture whose model is registered, not yet checked (no
    reproduction pending or finished)."""
    return (
        Image.objects.filter(
            source_record__state=SourceRecord.State.IMPORTED, model_version__isnull=False
        )
        .exclude(reproductions__isnull=False)
        .order_by("pk")
    )


def source_verification(*, record: SourceRecord) -> str:
    """ "unverified", or the latest finished reproduction's verdict ("bit-identical" means
    verified: Seedbank re-made the source's own pixels)."""
    if record.image is None or record.state != SourceRecord.State.IMPORTED:
        return "unverified"
    latest = image_last_reproduction(image=record.image)
    return "unverified" if latest is None else str(latest.verdict)


def import_run_find(*, run_id: int) -> ImportRun | None:
    return ImportRun.objects.filter(pk=run_id).first()


def import_problem_reasons(*, run: ImportRun, limit: int = 20) -> list[dict[str, object]]:
    """The run's problems grouped by kind and reason, commonest first, with one place each:
    7,000 rows with the same fault read as one line."""
    grouped = list(
        ImportProblem.objects.filter(run=run)
        .values("kind", "reason")
        .annotate(rows=Count("id"), first=Min("id"))  # the first found, not the least text
        .order_by("-rows", "reason")[:limit]
    )
    places = dict(
        ImportProblem.objects.filter(pk__in=[group["first"] for group in grouped]).values_list(
            "pk", "location"
        )
    )
    return [{**group, "example": places[group["first"]]} for group in grouped]


# --- prompt-only results ------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptOnlyHit:
    """An imported prompt with no picture here, found by a search."""

    source_prompt: SourcePrompt  # with its source row (tool, location)
    score: float  # what the list is ordered by: cosine, keyword rank, or RRF
    vector_score: float | None = None  # text→text cosine of the query and the prompt
    keyword_score: float | None = None


@dataclass(frozen=True)
class PromptOnlyResults:
    hits: list[PromptOnlyHit]
    hidden_below_threshold: int = 0
    threshold: float | None = None


_VISIBLE = {
    "include": "NOT hidden",
    "exclude": "NOT hidden AND NOT nsfw",
    "only": "NOT hidden AND nsfw",
}


@lru_cache(maxsize=8)
def _declared_prompt_bound(path: str) -> float | None:
    try:
        config = json.loads((Path(path) / CLIP_CONFIG).read_text())
    except (OSError, ValueError):
        return None
    value = config.get("seedbank", {}).get("prompt_relevance_cosine")
    return None if value is None else float(value)


def prompt_relevance_bound(model: EmbeddingModel) -> float:
    """The text→text cosine under which a prompt-only match by meaning is noise: the model's
    own (its config's "seedbank" section), else SEEDBANK_PROMPT_RELEVANCE_COSINE."""
    own = _declared_prompt_bound(model.path)
    return own if own is not None else float(settings.SEEDBANK_PROMPT_RELEVANCE_COSINE)


def prompt_only_search(
    *,
    query: str,
    model: EmbeddingModel,
    mode: str = "hybrid",
    nsfw: str = "include",
    limit: int = 8,
    min_score: float | None = None,
) -> PromptOnlyResults:
    """Imported prompts (no picture, not rendered here) for a search by words: by keyword (the
    GIN index), by meaning (the CLIP text encoder: query text against prompt text, HNSW), or
    both fused by reciprocal rank as records are. Hidden rows never appear; `nsfw` as for
    records. Vector matches under the prompt bound are hidden unless their words match."""
    if not query.strip():
        return PromptOnlyResults(hits=[])
    visible = _VISIBLE.get(nsfw, _VISIBLE["include"])
    terms = (query, segment(query))
    depth = max(limit, 50)
    keyword: list[tuple[int, float]] = []
    cosine: list[tuple[int, float]] = []
    with connection.cursor() as cursor:
        if mode in {"keyword", "hybrid"}:
            # ts_rank reads each match's tsvector: as for records, only the newest
            # SEEDBANK_KEYWORD_RANK_MAX matches are ranked (OFFSET 0 keeps the GIN bitmap scan
            # whole, so the planner cannot walk the primary key backwards testing every row).
            cursor.execute(
                f"SELECT source_id, ts_rank(search_vector, {KEYWORD_TSQUERY}) AS rank FROM ("
                "SELECT source_id, search_vector FROM ("
                f"SELECT source_id, search_vector FROM archive_sourceprompt "
                f"WHERE search_vector @@ {KEYWORD_TSQUERY} AND {visible} OFFSET 0) AS matches "
                "ORDER BY source_id DESC LIMIT %s) AS newest "
                "ORDER BY rank DESC, source_id DESC LIMIT %s",
                (*terms, *terms, settings.SEEDBANK_KEYWORD_RANK_MAX, depth),
            )
            keyword = [(int(pk), float(rank)) for pk, rank in cursor.fetchall()]
        if mode in {"vector", "hybrid"}:
            vector = "[" + ",".join(repr(float(x)) for x in query_text_vector(query, model)) + "]"
            cursor.execute(
                "SELECT source_id, embedding <=> %s::vector AS distance FROM archive_sourceprompt "
                f"WHERE embedding_model = %s AND {visible} ORDER BY distance LIMIT %s",
                (vector, model.name, depth),
            )
            cosine = [(int(pk), 1.0 - float(distance)) for pk, distance in cursor.fetchall()]
    bound = prompt_relevance_bound(model) if min_score is None else min_score
    matched = dict(keyword)
    hidden = {pk for pk, score in cosine if score < bound and pk not in matched}
    cosine = [(pk, score) for pk, score in cosine if pk not in hidden]
    if mode == "keyword" or not cosine:
        ordered = keyword
    elif mode == "vector" or not keyword:
        ordered = cosine
    else:
        fused = reciprocal_rank_fusion(cosine, keyword)
        ordered = sorted(fused.items(), key=lambda item: -item[1])
    shown = ordered[:limit]
    rows = SourcePrompt.objects.select_related("source").in_bulk([pk for pk, _ in shown])
    similarity = dict(cosine)
    return PromptOnlyResults(
        hits=[
            PromptOnlyHit(
                source_prompt=rows[pk],
                score=score,
                vector_score=similarity.get(pk),
                keyword_score=matched.get(pk),
            )
            for pk, score in shown
            if pk in rows
        ],
        hidden_below_threshold=len(hidden),
        threshold=bound if cosine or hidden else None,
    )


def source_prompt_find(*, source_id: int) -> SourcePrompt | None:
    """A prompt-only row anyone may see (not hidden), with its source row."""
    return SourcePrompt.objects.select_related("source").filter(pk=source_id, hidden=False).first()


def image_prompt_source(*, image: Image) -> SourceRecord | None:
    """The imported row whose prompt `image` was rendered from here, if it was."""
    found = PromptRender.objects.select_related("source").filter(image=image).first()
    return None if found is None else found.source
