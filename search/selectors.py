"""Reads for search: vector (text→image, image→image), keyword, hybrid (RRF), with filters,
scores, a relevance threshold and near-duplicate handling. Only the active model's vectors
are ever compared."""

from __future__ import annotations

import json
import logging
import threading
from array import array
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, F, Func, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import JSONObject
from django.utils import timezone
from pgvector.django import CosineDistance

from engine.keywords import segment
from engine.search_query import CHINESE_CHARACTERS, SHA256_PREFIX
from engine.weights import files_digest
from generator.models import Image, Reproduction
from generator.selectors.records import images_public, images_visible_to
from generator.selectors.variants import VariantGroups
from search.models import EMBEDDING_DIM, EmbeddingModel, ImageEmbedding

logger = logging.getLogger(__name__)

RRF_K = 60  # reciprocal rank fusion constant (Cormack et al.; pgvector's hybrid example)
CANDIDATES = 100  # how deep each list goes before fusion
TINY_CLIP_NAME = "seedbank-tiny-clip"  # engine.tiny_models: random weights, for tests
CLIP_CONFIG = "open_clip_config.json"


@dataclass(frozen=True)
class SearchHit:
    image: Image
    score: float  # what the list is ordered by: cosine, keyword rank, or RRF
    vector_score: float | None = None  # cosine similarity to the query, 1 = same direction
    keyword_score: float | None = None  # Postgres ts_rank
    duplicates: list[Image] = field(default_factory=list)  # collapsed near-duplicates


@dataclass(frozen=True)
class SearchResults:
    hits: list[SearchHit]
    hidden_below_threshold: int = 0
    threshold: float | None = None  # the cosine bound applied to vector matches, if any
    strategy: str = ""  # how the vector list was found (hnsw / exact), for the curious
    # The words meant nothing to the model (best cosine under its nonsense bound): no vector
    # matches; in vector mode, keyword_matches counts what a keyword search finds instead.
    no_meaning: bool = False
    keyword_matches: int = 0


def _day_start(day: date) -> datetime:
    """Midnight starting `day` in the site's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class SearchFilters:
    model: str = ""
    scheduler: str = ""
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    # Restrict to these records: a subquery of image ids the caller builds (the gallery's
    # collections), so search needs to know nothing about what a collection is.
    within: QuerySet[Any] | None = None
    nsfw: str = "include"  # include | exclude | only
    # From the search box's filters (engine.search_query): (lookup, number) comparisons,
    # the owner's username, LoRA names or sha256 prefixes (all used), the prompt's language
    # ("zh": it has Chinese characters), a bit-identical reproduction, and words or phrases
    # the prompt must hold (phrases) or must not (excluded).
    steps: tuple[tuple[str, int], ...] = ()
    guidance: tuple[tuple[str, float], ...] = ()
    user: str = ""
    loras: tuple[str, ...] = ()
    lang: str = ""
    verified: bool | None = None
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    def apply(self, images: QuerySet[Image]) -> QuerySet[Image]:
        images = self._apply_query_fields(images)
        if self.model:
            images = images.filter(model_name=self.model)
        if self.scheduler:
            images = images.filter(scheduler=self.scheduler)
        if self.width:
            images = images.filter(width=self.width)
        if self.height:
            images = images.filter(height=self.height)
        if self.seed is not None:
            images = images.filter(seed=self.seed)
        # As a range of instants, not created_at::date: a range can use an index.
        if self.date_from:
            images = images.filter(created_at__gte=_day_start(self.date_from))
        if self.date_to:
            images = images.filter(created_at__lt=_day_start(self.date_to + timedelta(days=1)))
        if self.within is not None:
            images = images.filter(pk__in=self.within)
        if self.nsfw == "exclude":
            images = images.filter(nsfw=False)
        elif self.nsfw == "only":
            images = images.filter(nsfw=True)
        return images

    def _apply_query_fields(self, images: QuerySet[Image]) -> QuerySet[Image]:
        for lookup, steps in self.steps:
            images = images.filter(**{f"steps__{lookup}": steps})
        for lookup, guidance in self.guidance:
            images = images.filter(**{f"guidance__{lookup}": guidance})
        if self.user:
            images = images.filter(owner__username=self.user)
        for lora in self.loras:
            images = images.filter(_lora_used(lora))
        if self.lang == "zh":
            images = images.filter(prompt__regex=CHINESE_CHARACTERS)
        elif self.lang == "en":
            images = images.exclude(prompt__regex=CHINESE_CHARACTERS)
        if self.verified is not None:
            identical = Reproduction.objects.filter(verdict=Reproduction.Verdict.BIT_IDENTICAL)
            reproduced = Q(pk__in=identical.values("image_id"))
            images = images.filter(reproduced if self.verified else ~reproduced)
        for phrase in self.phrases:
            # The GIN index finds records with the phrase anywhere in their recipe's text;
            # ts_filter keeps those that have it in the prompt (weight A), not the negative.
            terms = (phrase, segment(phrase), phrase, segment(phrase))
            images = images.filter(
                RawSQL(
                    f"search_vector @@ {_PHRASE} "
                    f"AND ts_filter(search_vector, '{{a}}') @@ {_PHRASE}",
                    terms,
                    output_field=BooleanField(),
                )
            )
        for word in self.excluded:
            # Records never indexed (search_vector NULL) hold no word: kept, not dropped.
            images = images.filter(
                RawSQL(
                    f"NOT coalesce(ts_filter(search_vector, '{{a}}') @@ {KEYWORD_TSQUERY}, false)",
                    (word, segment(word)),
                    output_field=BooleanField(),
                )
            )
        return images

    @property
    def active(self) -> bool:
        return self != SearchFilters()


# A phrase: its words in order, English stems or segmented words (Chinese).
_PHRASE = (
    "(phraseto_tsquery('english'::regconfig, %s) || phraseto_tsquery('simple'::regconfig, %s))"
)


def _lora_used(lora: str) -> Q:
    """Records whose recipe uses a LoRA of that name, or whose sha256 starts with that hex."""
    named = Q(loras__contains=[{"name": lora}])
    if not SHA256_PREFIX.fullmatch(lora):
        return named
    prefixed = Func(
        F("loras"),
        Value("$[*] ? (@.resource starts with $prefix)"),
        JSONObject(prefix=Value(lora)),
        template="jsonb_path_exists(%(expressions)s)",
        output_field=BooleanField(),
    )
    return named | Q(prefixed)


# --- the active embedding model --------------------------------------------------------------


def embedding_model_name(path: Path) -> str:
    """Config name plus weights digest: two checkpoints of one architecture never share a name."""
    config = json.loads((path / CLIP_CONFIG).read_text())
    digest = files_digest(path, marker=CLIP_CONFIG)
    if digest is None:
        raise FileNotFoundError(f"No CLIP model at {path} (no {CLIP_CONFIG})")
    return f"{config.get('model_name', path.name)}@{digest[:8]}"


def active_embedding_model() -> EmbeddingModel:
    """The model queries use. Before any vector exists that is the one in SEEDBANK_CLIP_PATH,
    described unsaved: the first embedding registers it (search.services), never a page view."""
    active = EmbeddingModel.objects.filter(is_active=True).first()
    if active is not None:
        return active
    path = Path(settings.SEEDBANK_CLIP_PATH)
    name = embedding_model_name(path)
    return EmbeddingModel.objects.filter(name=name).first() or EmbeddingModel(
        name=name, path=str(path), dim=EMBEDDING_DIM, **embedding_model_bounds(path)
    )


def embedding_model_bounds(path: Path) -> dict[str, float | None]:
    """The cosine bounds a CLIP folder declares for itself under "seedbank" in its config
    (the scene CLIP's were measured on held-out scenes when it was trained); None: the site's
    defaults (settings)."""
    config = json.loads((path / CLIP_CONFIG).read_text())
    own = config.get("seedbank", {})
    bounds: dict[str, float | None] = {
        key: float(own[key]) if key in own else None
        for key in ("relevance_cosine", "near_duplicate_cosine", "nonsense_cosine")
    }
    if bounds["near_duplicate_cosine"] is None and config.get("model_name") == TINY_CLIP_NAME:
        # Measured on the demo gallery: unrelated renders sit at cosine 0.958-0.995 under the
        # random tiny CLIP, so only (nearly) identical pixels count as duplicates there.
        bounds["near_duplicate_cosine"] = 0.999
    return bounds


def active_model_name() -> str:
    return active_embedding_model().name


def relevance_bound(model: EmbeddingModel) -> float:
    """The default cosine under which a search by words hides a vector match."""
    own = model.relevance_cosine
    return own if own is not None else float(settings.SEEDBANK_RELEVANCE_COSINE)


def nonsense_bound(model: EmbeddingModel) -> float | None:
    """The best cosine a query with no meaning for the model reaches; None: not declared."""
    return model.nonsense_cosine


def near_duplicate_bound(model: EmbeddingModel | None = None) -> float:
    own = (model or active_embedding_model()).near_duplicate_cosine
    return own if own is not None else float(settings.SEEDBANK_NEAR_DUPLICATE_COSINE)


# --- vector search ---------------------------------------------------------------------------


def _vector_ranked(
    vector: list[float], candidates: QuerySet[Image], *, limit: int, filtered: bool, model_name: str
) -> tuple[list[tuple[int, float]], str]:
    """[(image id, cosine)] best first, and the strategy used.

    Unfiltered: HNSW at the connection's ef_search. Filtered, a plain HNSW scan would apply the
    WHERE clause after the graph walk and could return fewer than `limit` rows, so:
    - when the filter leaves at most SEEDBANK_EXACT_SEARCH_MAX_ROWS rows (counted through the
      filter columns' indexes, stopping there), an exact sort of just those rows' vectors;
    - otherwise HNSW with pgvector 0.8's iterative scan, which keeps walking the graph until
      `limit` rows pass the filter (up to SEEDBANK_HNSW_MAX_SCAN_TUPLES visited);
    - and the exact answer if even that came up short, so k rows come back whenever k exist.
    tests/search/test_filtered_recall.py checks each path against brute force at 50k rows.
    """
    embeddings = ImageEmbedding.objects.filter(model_name=model_name)

    def ranked(within: QuerySet[Any], *, exact: bool) -> QuerySet[Any]:
        distance: Any = CosineDistance("embedding", vector)
        if exact:
            # "+ 0" is not the expression the HNSW index orders by, so the planner takes the
            # filter's rows first (their index) and sorts just their vectors.
            distance = distance + Value(0.0)
        return (
            embeddings.filter(image__in=within)
            .annotate(distance=distance)
            .order_by("distance")
            .values_list("image_id", "distance")[:limit]
        )

    def rows(query: QuerySet[Any]) -> list[tuple[int, float]]:
        # Iterative scans in relaxed order may hand back near-ties out of order: ranked here.
        found = [(image_id, 1.0 - float(distance)) for image_id, distance in query]
        return sorted(found, key=lambda row: -row[1])

    if not filtered:
        # The connection's own ef_search and iterative scan (config.settings sets them for
        # every connection).
        return rows(ranked(candidates, exact=False)), (
            f"hnsw ef_search={settings.SEEDBANK_HNSW_EF_SEARCH}"
        )
    most = settings.SEEDBANK_EXACT_SEARCH_MAX_ROWS
    # The planner's estimate costs no scan. Only a filter it expects to be small is counted
    # (through the filter's index, stopping at most + 1): a large one goes straight to HNSW.
    if _estimated_rows(candidates) <= most * ESTIMATE_SLACK:
        bounded = candidates.values("pk")[: most + 1]
        if bounded.count() <= most:
            # The LIMIT tells the planner how few rows there are (its estimate may be off).
            return rows(ranked(bounded, exact=True)), "exact"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.ef_search', %s, true), "
            "set_config('hnsw.max_scan_tuples', %s, true), "
            # The graph walk drives: each record it reaches is checked through the primary key.
            # Without this, at tens of thousands of rows, the planner may hash the whole
            # filtered set first (a scan of the image table, growing with the archive).
            "set_config('enable_seqscan', 'off', true)",
            [
                str(settings.SEEDBANK_HNSW_EF_SEARCH_FILTERED),
                str(settings.SEEDBANK_HNSW_MAX_SCAN_TUPLES),
            ],
        )
        found = rows(ranked(candidates, exact=False))
    if len(found) < limit:  # rarer than max_scan_tuples allows for: pay for the exact answer
        return rows(ranked(candidates, exact=True)), "exact (iterative hnsw came up short)"
    return found, f"hnsw iterative ef_search={settings.SEEDBANK_HNSW_EF_SEARCH_FILTERED}"


# Keyword matches the planner expects up to this many times SEEDBANK_KEYWORD_RANK_MAX are read
# from the GIN index whole; commoner words are looked for among the newest
# KEYWORD_WINDOW_FACTOR x cap records first (_keyword_ranked), when the planner expects that
# window to hold at least KEYWORD_WINDOW_FILL x cap matches.
KEYWORD_BITMAP_FACTOR = 5
KEYWORD_WINDOW_FACTOR = 25
KEYWORD_WINDOW_FILL = 1.0

# Planner estimates of one equality filter are close (per-column statistics); several filters
# together may be off by a few times, since Postgres assumes them independent.
ESTIMATE_SLACK = 4


def _estimated_rows(candidates: QuerySet[Image]) -> float:
    plan = json.loads(candidates.values("pk").explain(format="json"))
    return float(plan[0]["Plan"]["Plan Rows"])


def _word_match_bounds(words: list[str], candidates: QuerySet[Image]) -> tuple[float, float]:
    """The planner's estimate of the candidates, and an upper bound on how many of them match
    all the words: the rarest word's own estimate (one EXPLAIN for all of them).

    The words are ANDed, and the planner multiplies their frequencies as if independent: for
    "red fox", which always come together in 11 % of a million prompts, it expected 25,000
    matches, not 110,000. No match can be commoner than its rarest word.
    """
    branches = [candidates.values("pk").query.sql_with_params()]
    for word in words:
        branches.append(_matching(candidates, (word, word)).values("pk").query.sql_with_params())
    sql = " UNION ALL ".join(f"({branch})" for branch, _ in branches)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT json) {sql}", [p for _, ps in branches for p in ps])
        (explained,) = cursor.fetchone()
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    # One branch (no words: punctuation only) plans as that branch alone, not an Append.
    branches_planned = plan["Plans"] if plan.get("Node Type") == "Append" else [plan]
    estimates = [float(child["Plan Rows"]) for child in branches_planned]
    return estimates[0], min(estimates[1:], default=0.0)


def text_embedder_warm() -> None:
    """Load the active CLIP model and jieba's dictionary in this process (web workers call it
    from a thread at start; each costs a second or more on first use). Thread-safe: a search
    that comes meanwhile waits for the same load instead of starting a second one."""
    segment("预热 warm-up")
    try:
        _text_vector("warm-up", active_embedding_model())
    except Exception:  # a missing model must not stop the site; searches will say so
        logger.exception("could not load the CLIP model ahead of the first search")


# One load per process, whichever thread asks first (the warm-up thread or a search): loaded
# twice at once, it would cost twice the time and, for a while, twice the memory.
_text_model_lock = threading.Lock()


def _text_vector(query: str, model: EmbeddingModel) -> list[float]:
    return list(_text_vector_cached(model.path, query))


def query_text_vector(query: str, model: EmbeddingModel) -> list[float]:
    """`model`'s text embedding of a query (cached per process): other apps' searches by
    meaning over text (archive's imported prompts) share the search box's encoder and cache."""
    return _text_vector(query, model)


@lru_cache(maxsize=1024)  # 1024 doubles arrays of EMBEDDING_DIM: a few MB per process
def _text_vector_cached(path: str, query: str) -> array[float]:
    # Popular queries repeat (the home page's search box, links to "cat"): a CLIP text forward
    # costs milliseconds of CPU per request, a dictionary lookup nothing. Keyed by the model's
    # path, so a re-embed with a new model never reuses the old model's vectors.
    # Imported here: torch and open_clip cost seconds; commands and admin never need them.
    from engine import embedder

    with _text_model_lock:
        embedder.load(path)  # cached once loaded: later calls take the lock for no time
    (vector,) = embedder.embed_texts(path, [query])
    return array("d", (float(x) for x in vector))


def image_vector(image: Image, model: EmbeddingModel | None = None) -> list[float] | None:
    name = (model or active_embedding_model()).name
    own = ImageEmbedding.objects.filter(image=image, model_name=name).first()
    return None if own is None else [float(x) for x in own.embedding]


def uploaded_image_vector(picture: Any, model: EmbeddingModel | None = None) -> list[float]:
    """Embed a (validated) PIL image with the active model, for image→image search."""
    # Imported here: torch and open_clip cost seconds; commands and admin never need them.
    from engine import embedder

    path = (model or active_embedding_model()).path
    (vector,) = embedder.embed_images(path, [picture.convert("RGB")])
    return [float(x) for x in vector]


# The keyword query: English stems or segmented words (Chinese), as records are indexed
# (generator.services.records.keyword_vector); every keyword statement here and the
# prompt-only search (archive.selectors) use this text.
KEYWORD_TSQUERY = (
    "(plainto_tsquery('english'::regconfig, %s) || plainto_tsquery('simple'::regconfig, %s))"
)


def _matching(candidates: QuerySet[Image], terms: tuple[str, str]) -> QuerySet[Image]:
    """The candidates whose keyword vector matches the terms (English, segmented)."""
    return candidates.filter(
        RawSQL(f"search_vector @@ {KEYWORD_TSQUERY}", terms, output_field=BooleanField())
    )


def _keyword_ranked(
    query: str, candidates: QuerySet[Image], *, limit: int
) -> list[tuple[int, float]]:
    """[(image id, ts_rank)] best first, among the newest SEEDBANK_KEYWORD_RANK_MAX matches.

    ts_rank reads every match's tsvector (261 ms for a phrase in 90k of 300k records), so a
    phrase that common ranks its recent records, rarer words all of theirs. The newest matches
    are read the cheap way for how common the words are (bench/search.py, 1M records):
    - rare (at most KEYWORD_BITMAP_FACTOR x cap matches, or too few for the window below to
      fill, by the rarest word's estimate): every match from the GIN index, then the newest
      ("长城" in 1.4 % of a million: 23 ms; trying the window first cost 16 ms more);
    - else the newest KEYWORD_WINDOW_FACTOR x cap records, newest first, until `cap` match:
      exact when they do, reading at most that window (a word in 11 % of the records stops
      after 18,000 rows; reading its 110,000 matches took 100 ms);
    - words rarer than that among recent records: every match from the GIN index after all.
    The planner's estimate of the whole query misleads both ways: words that come together
    ("red fox") are commoner than it multiplies out, and left to itself it walks the primary
    key backwards testing each row, 300,000 rows for a word in 2 % of a million (350 ms).
    """
    terms = (query, segment(query))
    cap = settings.SEEDBANK_KEYWORD_RANK_MAX
    matches = _matching(candidates, terms)
    records, bound = _word_match_bounds(terms[1].split(), candidates)
    window_size = cap * KEYWORD_WINDOW_FACTOR
    expected_in_window = bound * min(1.0, window_size / max(records, 1.0))
    if bound > cap * KEYWORD_BITMAP_FACTOR and expected_in_window >= cap * KEYWORD_WINDOW_FILL:
        window, params = (
            candidates.order_by("-id").values("pk", "search_vector").query.sql_with_params()
        )
        newest = (
            f"SELECT pk, search_vector FROM ({window} LIMIT %s) AS recent "
            f"WHERE search_vector @@ {KEYWORD_TSQUERY} ORDER BY pk DESC LIMIT %s"
        )
        rows = _ranked(terms, newest, (*params, window_size, *terms, cap), limit)
        if rows and rows[0][2] == cap:
            return [(pk, rank) for pk, rank, _ in rows]
    sql, params = matches.values("pk", "search_vector").query.sql_with_params()
    # OFFSET 0 keeps the subquery whole, so the ORDER BY cannot be pushed into it.
    newest = f"SELECT pk, search_vector FROM ({sql} OFFSET 0) AS matches ORDER BY pk DESC LIMIT %s"
    return [(pk, rank) for pk, rank, _ in _ranked(terms, newest, (*params, cap), limit)]


def _ranked(
    terms: tuple[str, str], newest: str, params: tuple[Any, ...], limit: int
) -> list[tuple[int, float, int]]:
    """(id, ts_rank, how many were ranked) of the best `limit` rows of the `newest` query."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pk, ts_rank(search_vector, {KEYWORD_TSQUERY}) AS rank, count(*) OVER () "
            f"FROM ({newest}) AS newest ORDER BY rank DESC, pk DESC LIMIT %s",
            (*terms, *params, limit),
        )
        return [(int(pk), float(rank), int(ranked)) for pk, rank, ranked in cursor.fetchall()]


def reciprocal_rank_fusion(*lists: list[tuple[int, float]]) -> dict[int, float]:
    """{id: fused score} of ranked (id, score) lists (k = RRF_K), for records and prompts."""
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, (image_id, _) in enumerate(ranked, start=1):
            fused[image_id] = fused.get(image_id, 0.0) + 1.0 / (RRF_K + rank)
    return fused


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
    vector_list: list[tuple[int, float]] = []
    keyword_list: list[tuple[int, float]] = []
    strategy = ""
    if mode in {"vector", "hybrid"} and (vector is not None or query):
        query_vector = vector if vector is not None else _text_vector(query, model)
        # Leaving out one record (a record page's own) is not a filter: ask the index for one
        # more and drop it, rather than counting the table and maybe searching exactly.
        for deeper in (1, 4):
            vector_list, strategy = _vector_ranked(
                query_vector,
                unexcluded,
                limit=depth * deeper + 1,
                filtered=filters.active,
                model_name=model.name,
            )
            vector_list = [(pk, s) for pk, s in vector_list if pk != exclude_id][: depth * deeper]
            # Variants (a batch, a seed sweep) fold into one result: a vector list as deep as
            # the page that folds short of it is asked again, deeper (rare: one more query).
            if depth > limit or len(vector_list) < depth * deeper:
                break
            if len(variants.first_of_each(vector_list)) >= limit:
                break
    # Words with no meaning for the model ("qwxzv florbin gnark") still have nearest pictures:
    # when even the best is under the model's nonsense bound, nothing matches by meaning.
    nonsense = nonsense_bound(model) if judged else None
    no_meaning = bool(vector_list) and nonsense is not None and vector_list[0][1] < nonsense
    if no_meaning:
        vector_list = []
    keyword_matches = 0
    if mode in {"keyword", "hybrid"} and query and vector is None:
        keyword_list = _keyword_ranked(query, candidates, limit=depth)
    elif no_meaning:  # offered instead of the vector matches
        keyword_matches = len(_keyword_ranked(query, candidates, limit=depth))
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

    ordered = variants.first_of_each(ordered)  # the best-ranked record of each group
    # Only the rows shown are loaded (all ranked ones when near-duplicates may fold some away).
    shown = ordered if collapse_duplicates else ordered[:limit]
    records = (
        Image.objects.listing().select_related("model_version").in_bulk([pk for pk, _ in shown])
    )
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
    variants.counted(hit.image for hit in hits[:limit])
    return SearchResults(
        hits=hits[:limit],
        hidden_below_threshold=len(hidden),
        strategy=strategy,
        threshold=min_score if vector_list or hidden else None,
        no_meaning=no_meaning,
        keyword_matches=keyword_matches,
    )


# --- near-duplicates -------------------------------------------------------------------------


def _vectors(image_ids: list[int], model_name: str) -> dict[int, np.ndarray]:
    rows = ImageEmbedding.objects.filter(image_id__in=image_ids, model_name=model_name).values_list(
        "image_id", "embedding"
    )
    return {image_id: np.asarray(vector, dtype=np.float32) for image_id, vector in rows}


def collapse_near_duplicates(hits: list[SearchHit], model: EmbeddingModel) -> list[SearchHit]:
    """Keep the best-ranked of each group whose vectors are within the near-duplicate bound."""
    vectors = _vectors([hit.image.pk for hit in hits], model.name)
    bound = near_duplicate_bound(model)
    kept: list[SearchHit] = []
    for hit in hits:
        mine = vectors.get(hit.image.pk)
        for leader in kept:
            theirs = vectors.get(leader.image.pk)
            if mine is not None and theirs is not None and float(mine @ theirs) >= bound:
                leader.duplicates.append(hit.image)
                break
        else:
            kept.append(hit)
    return kept


@dataclass(frozen=True)
class Neighbours:
    similar: list[SearchHit]
    near_duplicates: list[SearchHit]
    bound: float


def image_neighbours(*, image: Image, similar: int = 8, duplicates: int = 12) -> Neighbours:
    """A record page's similar images and near-duplicates from one vector search: the nearest
    records, and those of them within the near-duplicate bound."""
    model = active_embedding_model()
    bound = near_duplicate_bound(model)
    vector = image_vector(image, model)
    if vector is None:
        return Neighbours(similar=[], near_duplicates=[], bound=bound)
    hits = search_images(
        vector=vector,
        mode="vector",
        limit=max(similar, duplicates),
        exclude_id=image.pk,
        embedding_model=model,
    ).hits
    close = [hit for hit in hits if hit.vector_score is not None and hit.vector_score >= bound]
    return Neighbours(similar=hits[:similar], near_duplicates=close[:duplicates], bound=bound)


@dataclass(frozen=True)
class PictureLikeness:
    """Records that look like an uploaded picture to the active CLIP model."""

    hits: list[SearchHit]  # within the bound, nearest first; vector_score is the cosine
    bound: float  # the model's near-duplicate cosine (near_duplicate_bound)
    model_name: str


def picture_near_duplicates(*, picture: Any, viewer: Any, limit: int = 5) -> PictureLikeness:
    """The records `viewer` may open whose vectors are within the near-duplicate bound of an
    uploaded (validated, decoded) picture, nearest first.

    The bound is the model's own near-duplicate cosine, measured to keep re-encoded copies:
    the 56 distinct demo pictures saved as JPEG at quality 85 score 0.906-0.998 against their
    originals under the scene CLIP (median 0.991, 55 at or above its bound 0.92; quality 95:
    all 56), random-noise pictures at most 0.74, unrelated demo pictures 0.85 at the 99th
    percentile (the random-weight tiny CLIP of the tests: copies >= 0.9998, noise <= 0.94,
    bound 0.999). Near means "looks the same to CLIP", not "the same file": a sibling of the
    record (the same scene from another model) can score as high, so each match is listed
    with its cosine, nearest first; only the pixel digest proves identity."""
    model = active_embedding_model()
    bound = near_duplicate_bound(model)
    vector = uploaded_image_vector(picture, model)
    staff = viewer is not None and getattr(viewer, "is_staff", False)
    found, _ = _vector_ranked(
        vector,
        images_visible_to(viewer),
        limit=limit,
        filtered=staff,  # staff also see hidden records: not the public partial index
        model_name=model.name,
    )
    close = [(pk, cosine) for pk, cosine in found if cosine >= bound]
    records = (
        Image.objects.listing().select_related("model_version").in_bulk([pk for pk, _ in close])
    )
    hits = [
        SearchHit(image=records[pk], score=cosine, vector_score=cosine)
        for pk, cosine in close
        if pk in records
    ]
    return PictureLikeness(hits=hits, bound=bound, model_name=model.name)


# --- what the embedding services need ----------------------------------------------------------


def images_for_embedding(*, image_ids: list[int]) -> list[Image]:
    """Those of `image_ids` that are ready with their pixels stored (not evicted, not failed)."""
    return list(
        Image.objects.listing()
        .filter(pk__in=image_ids, status=Image.Status.READY)
        .exclude(image_file="")
        .order_by("pk")
    )


def images_without_embedding(*, model_name: str) -> list[tuple[int, str]]:
    """(id, stored file) of public records with no vector from `model_name`, oldest first."""
    return list(
        images_public()
        .exclude(clip_embeddings__model_name=model_name)
        .exclude(image_file="")
        .order_by("pk")
        .values_list("pk", "image_file")
    )
