"""Search kinds against the real database: keyword (Chinese too), vector, hybrid, scores,
threshold, every filter, selective filters, near-duplicates, uploads, re-embedding, APIs."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image as PILImage

from engine import embedder
from gallery.models import Collection, CollectionItem
from gallery.selectors import collection_image_ids
from generator.models import Image
from generator.services.records import image_keywords_index
from search.models import EMBEDDING_DIM, EmbeddingModel, ImageEmbedding
from search.selectors import (
    SearchFilters,
    active_embedding_model,
    active_model_name,
    image_neighbours,
    search_images,
)
from search.selectors import keyword as keyword_selectors
from search.services import embedding_model_ensure_registered
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def record(prompt: str, vector=None, **fields) -> Image:
    image = ImageFactory(prompt=prompt, **fields)
    image_keywords_index(image_ids=[image.pk])
    if vector is not None:
        ImageEmbedding.objects.create(
            image=image, model_name=active_model_name(), dim=EMBEDDING_DIM, embedding=unit(vector)
        )
    return image


def axis(index: int, wobble: float = 0.0) -> np.ndarray:
    vector = np.zeros(EMBEDDING_DIM, np.float32)
    vector[index] = 1.0
    vector[(index + 1) % EMBEDDING_DIM] = wobble
    return vector


@pytest.fixture
def media(media_root, tiny_sd_path):
    return media_root


def ids(results) -> list[int]:
    return [hit.image.pk for hit in results.hits]


def test_chinese_keyword_search_finds_a_word_inside_a_sentence(media) -> None:
    cat = record("一只猫坐在窗台上看雨")
    record("一只狗在草地上")
    results = search_images(query="猫", mode="keyword")
    assert ids(results) == [cat.pk]
    assert results.hits[0].keyword_score and results.hits[0].keyword_score > 0
    assert ids(search_images(query="窗台", mode="keyword")) == [cat.pk]


def test_english_keywords_are_stemmed_and_prompt_outranks_negative(media) -> None:
    in_prompt = record("a ginger cat on a sofa")
    in_negative = record("a dog on a sofa", negative_prompt="cats, blurry")
    assert ids(search_images(query="cats", mode="keyword")) == [in_prompt.pk, in_negative.pk]
    assert search_images(query="zebra", mode="keyword").hits == []


@pytest.mark.parametrize(
    ("bitmap_factor", "window_factor", "window_fill", "id_range"),
    [
        (1_000, 25, 1.0, None),
        (0, 25, 0.0, None),
        (0, 0, 0.0, None),
        (1_000, 25, 1.0, 1.0),
        (1_000, 25, 1.0, 0.0),
    ],
    ids=[
        "rare: every match from GIN",
        "common: newest window",
        "window came up short",
        "newest id range",
        "id range came up short",
    ],
)
def test_keyword_ranking_covers_the_newest_matches_when_a_phrase_is_that_common(
    media, settings, monkeypatch, bitmap_factor, window_factor, window_fill, id_range
) -> None:
    """ts_rank read every match (261 ms for a phrase in 90k of 300k records): only the newest
    SEEDBANK_KEYWORD_RANK_MAX matches are ranked, best first among them; the same whichever
    way the matches are read (how common the words are decides)."""
    monkeypatch.setattr("search.selectors.keyword.KEYWORD_BITMAP_FACTOR", bitmap_factor)
    monkeypatch.setattr("search.selectors.keyword.KEYWORD_WINDOW_FACTOR", window_factor)
    monkeypatch.setattr("search.selectors.keyword.KEYWORD_WINDOW_FILL", window_fill)
    ranges: list[int] = []
    if id_range is not None:  # the range path runs, holding all ids (1.0) or just the newest
        monkeypatch.setattr("search.selectors.keyword.KEYWORD_ID_RANGE_FILL", 0.0)
        newest_ids_from = keyword_selectors._newest_ids_from
        monkeypatch.setattr(
            "search.selectors.keyword._newest_ids_from",
            lambda fraction: ranges.append(newest_ids_from(id_range)) or ranges[-1],
        )
    best_but_oldest = record("lighthouse lighthouse lighthouse at dusk")
    newer = [record(f"a lighthouse, number {n}") for n in range(3)]
    settings.SEEDBANK_KEYWORD_RANK_MAX = 10
    assert ids(search_images(query="lighthouse", mode="keyword"))[0] == best_but_oldest.pk
    settings.SEEDBANK_KEYWORD_RANK_MAX = 3
    assert sorted(ids(search_images(query="lighthouse", mode="keyword"))) == sorted(
        image.pk for image in newer
    )
    if id_range is not None:
        assert ranges == [best_but_oldest.pk if id_range else newer[-1].pk] * 2


def test_vector_search_scores_are_cosines(media) -> None:
    near = record("near", axis(0, 0.1))
    far = record("far", axis(5))
    results = search_images(vector=list(axis(0)), mode="vector")
    assert ids(results) == [near.pk, far.pk]
    assert results.hits[0].vector_score == pytest.approx(float(unit(axis(0, 0.1))[0]), abs=1e-5)
    assert results.hits[1].vector_score == pytest.approx(0.0, abs=1e-6)


def test_hybrid_fuses_by_reciprocal_rank(media, monkeypatch) -> None:
    both = record("fox, a red fox in snow", axis(0, 0.5))  # vector rank 2, keyword rank 1
    vector_only = record("an astronaut", axis(0, 0.1))  # vector rank 1
    keyword_only = record("a fox den", axis(9))  # keyword rank 2, vector rank 3
    monkeypatch.setattr(
        "search.selectors.query_vectors.query_text_vector", lambda query, model: list(axis(0))
    )
    results = search_images(query="fox", mode="hybrid")
    assert ids(results)[0] == both.pk  # in both lists: 1/62 + 1/61 beats any single list
    scores = {hit.image.pk: hit.score for hit in results.hits}
    assert scores[both.pk] == pytest.approx(1 / 62 + 1 / 61)
    assert scores[vector_only.pk] == pytest.approx(1 / 61)
    assert scores[keyword_only.pk] == pytest.approx(1 / 63 + 1 / 62)


def test_threshold_hides_weak_matches_and_counts_them(client, media) -> None:
    strong = record("strong", axis(0, 0.2))
    record("weak", axis(3))
    record("weaker", axis(4))
    results = search_images(vector=list(axis(0)), mode="vector", min_score=0.5)
    assert ids(results) == [strong.pk] and results.hidden_below_threshold == 2
    page = client.get("/search/", {"like": strong.pk, "min_score": "0.5"}).content.decode()
    assert 'data-testid="hidden-count">2 weaker matches hidden' in page
    assert "relevance threshold: cosine 0.50" in page


@pytest.fixture
def words_mean_axis_0(monkeypatch):
    """Every text query embeds to axis 0 (the CLIP forward is not what these tests are about),
    and the active model's relevance bound is 0.5."""
    model = embedding_model_ensure_registered(model=active_embedding_model())
    EmbeddingModel.objects.filter(pk=model.pk).update(relevance_cosine=0.5)
    monkeypatch.setattr(
        "search.selectors.query_vectors.query_text_vector", lambda query, model: list(axis(0))
    )


def test_searches_by_words_hide_matches_under_the_models_relevance_bound(
    client, media, words_mean_axis_0
) -> None:
    close = record("a quiet harbour", axis(0, 0.2))
    noise = record("a busy market", axis(3))
    named = record("lighthouse keeper", axis(4))  # far in meaning, but has the word typed
    results = search_images(query="lighthouse", mode="hybrid")
    assert set(ids(results)) == {close.pk, named.pk}  # the keyword match is never hidden
    assert results.threshold == 0.5 and results.hidden_below_threshold == 1

    page = client.get("/search/", {"q": "lighthouse", "mode": "vector"}).content.decode()
    assert "relevance threshold: cosine 0.50" in page
    assert f'href="/images/{noise.pk}/"' not in page and f'href="/images/{close.pk}/"' in page
    link = re.search(r'href="\?([^"]+)" data-testid="show-all"', page)
    assert link is not None
    everything = client.get("/search/?" + link.group(1).replace("&amp;", "&")).content.decode()
    assert f'href="/images/{noise.pk}/"' in everything
    assert 'data-testid="hidden-count"' not in everything

    # Vector mode has no keyword list: the word match is hidden too.
    api = client.get("/api/v1/images", {"q": "lighthouse", "mode": "vector"}).json()
    assert api["threshold"] == 0.5 and api["hidden_below_threshold"] == 2
    api = client.get("/api/v1/images", {"q": "x", "mode": "vector", "min_score": -1}).json()
    assert api["hidden_below_threshold"] == 0 and len(api["results"]) == 3


def test_searches_by_image_have_no_default_bound(media, words_mean_axis_0) -> None:
    near = record("near", axis(0, 0.2))
    far = record("far", axis(3))
    results = search_images(vector=list(axis(0)), mode="vector")
    assert ids(results) == [near.pk, far.pk] and results.threshold is None


def test_every_filter(media, model_version) -> None:
    now = timezone.now()
    base = dict(vector=axis(0))
    a = record("a", **base, scheduler="DDIM", width=64, height=128, seed=7)
    b = record("b", **base, nsfw=True)
    c = record("c", **base)
    Image.objects.filter(pk=c.pk).update(created_at=now - timedelta(days=10))
    d = record("d", **base, model_version=model_version, model_name="tiny-sd@seed0")
    collection = Collection.objects.create(title="C", slug="c", is_public=True)
    CollectionItem.objects.create(collection=collection, image=a)

    def found(**filters) -> set[int]:
        return set(ids(search_images(vector=list(axis(0)), mode="vector",
                                     filters=SearchFilters(**filters))))  # fmt: skip

    assert found(scheduler="DDIM") == {a.pk}
    assert found(width=64, height=128) == {a.pk}
    assert found(seed=7) == {a.pk}
    assert found(model="tiny-sd@seed0") == {d.pk}
    assert found(within=collection_image_ids(slug="c")) == {a.pk}
    assert found(nsfw="only") == {b.pk}
    assert b.pk not in found(nsfw="exclude")
    assert found(date_to=(now - timedelta(days=5)).date()) == {c.pk}
    assert c.pk not in found(date_from=(now - timedelta(days=5)).date())


def test_selective_filter_still_returns_k_results(media, settings) -> None:
    rng = np.random.default_rng(1)
    for index in range(300):
        record(f"r{index}", rng.normal(size=EMBEDDING_DIM), seed=1 if index % 50 == 0 else 2)
    results = search_images(
        vector=list(rng.normal(size=EMBEDDING_DIM)), mode="vector",
        filters=SearchFilters(seed=1), limit=10,
    )  # fmt: skip
    assert len(results.hits) == 6 and results.strategy == "exact"  # all 6 of 300 (2 %)
    settings.SEEDBANK_EXACT_SEARCH_MAX_ROWS = 0  # force HNSW first: the filter leaves < k
    settings.SEEDBANK_SKETCH_SEARCH_MAX_ROWS = 0
    results = search_images(
        vector=list(rng.normal(size=EMBEDDING_DIM)), mode="vector",
        filters=SearchFilters(seed=1), limit=10,
    )  # fmt: skip
    assert len(results.hits) == 6 and results.strategy == "exact (iterative hnsw came up short)"
    # The exact fallback must really query again: it once re-read the HNSW rows cached on the
    # same QuerySet (wrong results labelled "exact" whenever the index came up short).
    with CaptureQueriesContext(connection) as captured:
        search_images(vector=list(rng.normal(size=EMBEDDING_DIM)), mode="vector",
                      filters=SearchFilters(seed=1), limit=10)  # fmt: skip
    vector_queries = [q["sql"] for q in captured.captured_queries if "<=>" in q["sql"]]
    assert len(vector_queries) == 2, vector_queries
    results = search_images(vector=list(rng.normal(size=EMBEDDING_DIM)), mode="vector", limit=10)
    assert len(results.hits) == 10 and results.strategy.startswith("hnsw")
    # Leaving out a record page's own record is not a filter: no table count, the index serves.
    own = results.hits[0].image.pk
    with CaptureQueriesContext(connection) as captured:
        results = search_images(vector=list(rng.normal(size=EMBEDDING_DIM)), mode="vector",
                                limit=10, exclude_id=own)  # fmt: skip
    assert results.strategy.startswith("hnsw") and len(results.hits) == 10
    assert own not in {hit.image.pk for hit in results.hits}
    # (Counting the shown records' variants is by key through its index, not the table.)
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"]]
    assert not [sql for sql in counts if "variant_key" not in sql]


def test_near_duplicates_and_collapse(settings, media) -> None:
    model = embedding_model_ensure_registered(model=active_embedding_model())
    assert model.near_duplicate_cosine == 0.999  # the tiny CLIP's own, measured bound
    model.near_duplicate_cosine = None  # fall back to the setting
    model.save(update_fields=["near_duplicate_cosine"])
    settings.SEEDBANK_NEAR_DUPLICATE_COSINE = 0.99
    original = record("original", axis(0))
    twin = record("twin", axis(0, 0.01))
    other = record("other", axis(0, 1.0))
    # The record page gets both lists from one search: the nearest records, and those of them
    # within the bound.
    neighbours = image_neighbours(image=original)
    assert [hit.image.pk for hit in neighbours.near_duplicates] == [twin.pk]
    nearest = search_images(vector=list(axis(0)), mode="vector", limit=8, exclude_id=original.pk)
    assert [hit.image.pk for hit in neighbours.similar] == ids(nearest)
    results = search_images(vector=list(axis(0)), mode="vector", collapse_duplicates=True)
    assert ids(results) == [original.pk, other.pk]
    assert results.hits[0].duplicates == [twin]


def _png(size=(64, 64)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_upload_search_and_bad_uploads(client, media) -> None:
    record("indexed", axis(0))
    ok = client.post("/search/", {"image": io.BytesIO(_png())})
    assert ok.status_code == 200 and "Images like your upload" in ok.content.decode()
    assert "score" in ok.content.decode()

    bomb = io.BytesIO()
    PILImage.new("1", (20000, 20000)).save(bomb, format="PNG")  # ~60 KB, 400 megapixels
    bomb.seek(0)
    response = client.post("/search/", {"image": bomb})
    assert response.status_code == 400
    assert "megapixels" in response.content.decode()

    response = client.post("/search/", {"image": io.BytesIO(b"GIF89a not really")})
    assert response.status_code == 400
    assert "not a PNG, JPEG or WebP" in response.content.decode()


def test_reembed_switches_models_without_mixing(media, tmp_path) -> None:
    from engine.tiny_models import build_tiny_clip

    images = [ImageFactory() for _ in range(3)]
    old = active_embedding_model()
    for image in images:
        ImageEmbedding.objects.create(
            image=image, model_name=old.name, dim=EMBEDDING_DIM, embedding=unit(axis(0))
        )
    second = build_tiny_clip(tmp_path / "clip-seed1", seed=1)

    call_command("reembed", "--model", str(second), "--no-switch", stdout=io.StringIO())
    new = EmbeddingModel.objects.exclude(pk=old.pk).get()
    assert new.name != old.name and not new.is_active
    assert ImageEmbedding.objects.filter(model_name=new.name).count() == 3
    # During: queries still see only the old model's vectors.
    hits = search_images(vector=list(axis(0)), mode="vector").hits
    assert all(hit.vector_score == pytest.approx(1.0) for hit in hits) and len(hits) == 3

    call_command("reembed", "--model", str(second), stdout=io.StringIO())
    assert active_model_name() == new.name
    (query,) = embedder.embed_texts(str(second), ["a fox"])
    hits = search_images(vector=list(query), mode="vector").hits
    expected = {
        row.image_id: float(np.asarray(row.embedding) @ query)
        for row in ImageEmbedding.objects.filter(model_name=new.name)
    }
    assert {hit.image.pk: hit.vector_score for hit in hits} == pytest.approx(expected, abs=1e-5)


def test_another_models_vectors_near_the_query_do_not_starve_the_index(media) -> None:
    """While a re-embed has written another model's vectors, the HNSW walk meets them first
    (here they all sit on the query); it must keep walking until it has k of the active
    model's, not return the few that passed its first ef_search candidates."""
    rng = np.random.default_rng(3)
    images = ImageFactory.create_batch(300)
    active = active_model_name()
    rows = []
    for image in images:
        rows.append(
            ImageEmbedding(
                image=image,
                model_name=active,
                dim=EMBEDDING_DIM,
                embedding=unit(rng.normal(size=EMBEDDING_DIM)),
            )
        )
        rows.append(
            ImageEmbedding(
                image=image,
                model_name="next-clip@0",
                dim=EMBEDDING_DIM,
                embedding=unit(axis(0, rng.uniform(0, 0.01))),
            )
        )
    ImageEmbedding.objects.bulk_create(rows)  # fmt: skip
    with connection.cursor() as cursor:
        # 600 rows would simply be sorted; an archive's size makes the planner walk the
        # graph, and so does this (for the test's transaction only).
        cursor.execute("SET LOCAL enable_sort = off")
    results = search_images(vector=list(axis(0)), mode="vector", limit=24)
    assert results.strategy.startswith("hnsw")
    assert len(results.hits) == 24
    scores = [hit.vector_score for hit in results.hits]
    assert scores == sorted(scores, reverse=True)


def test_lexica_api_shape_and_reverse_image_search(client, media) -> None:
    fox = record("a red fox", axis(0), seed=4242)
    twin = record("a red fox again", axis(0, 0.1))
    response = client.get("/api/v1/search", {"q": "fox"})
    assert response.status_code == 200
    images = response.json()["images"]
    assert {image["id"] for image in images} == {str(fox.pk), str(twin.pk)}
    first = next(image for image in images if image["id"] == str(fox.pk))
    assert set(first) == {"id", "gallery", "src", "srcSmall", "prompt", "width", "height",
                          "seed", "grid", "model", "guidance", "promptid", "nsfw"}  # fmt: skip
    assert first["seed"] == "4242" and first["src"].startswith("http://testserver/media/")

    by_page = client.get("/api/v1/search", {"q": f"http://testserver/images/{fox.pk}/"}).json()
    assert [image["id"] for image in by_page["images"]] == [str(twin.pk)]
    by_file = client.get("/api/v1/search", {"q": fox.image_file.url}).json()
    assert [image["id"] for image in by_file["images"]] == [str(twin.pk)]
    assert client.get("/api/v1/search").status_code == 400


def test_images_api_pages_with_a_cursor_and_scores(client, media) -> None:
    for index in range(5):
        record(f"fox number {index}", axis(0, index / 10))
    first = client.get("/api/v1/images", {"q": "fox", "mode": "keyword", "limit": 2}).json()
    assert len(first["results"]) == 2 and first["next_cursor"] == "2"
    assert first["results"][0]["scores"]["keyword"] > 0
    assert first["results"][0]["recipe"]["prompt"].startswith("fox number")
    pages = [first]
    while pages[-1]["next_cursor"]:
        params = {"q": "fox", "mode": "keyword", "limit": 2, "cursor": pages[-1]["next_cursor"]}
        pages.append(client.get("/api/v1/images", params).json())
    seen = [result["id"] for page in pages for result in page["results"]]
    assert len(seen) == len(set(seen)) == 5
    assert client.get("/api/v1/images", {"q": "fox", "width": "wide"}).status_code == 400


def test_openapi_schema_is_served(client, db) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/search", "/api/v1/images", "/api/v1/renders"} <= set(schema["paths"])
    json.dumps(schema)


def test_a_query_no_record_matches_whole_finds_records_with_some_of_its_words(
    media, client
) -> None:
    """No red cat, but red things and cats: some of the words, each on its own, fused; the
    page and the API say so. A record with all the words is a normal match."""
    ball = record("a red ball on the grass")
    cat = record("a cat asleep on a sofa")
    record("a blue car in the rain")
    for query in ("red cat", "a red cat", "red cats"):
        results = search_images(query=query, mode="keyword")
        assert sorted(ids(results)) == sorted([ball.pk, cat.pk]), query
        assert results.some_words == ["red", "cat" if query != "red cats" else "cats"], query
    assert search_images(query="red zebra", mode="keyword").some_words == ["red"]
    assert ids(search_images(query="red zebra", mode="keyword")) == [ball.pk]
    # One word, or words that all fail: nothing, as before.
    assert search_images(query="zebra", mode="keyword").hits == []
    assert search_images(query="zebra okapi", mode="keyword").hits == []
    # A record that has them all is found the normal way, alone.
    both = record("a red cat")
    whole = search_images(query="red cat", mode="keyword")
    assert ids(whole) == [both.pk] and whole.some_words == []

    page = client.get("/search/", {"q": "red zebra", "mode": "keyword"}).content.decode()
    assert 'data-testid="some-words"' in page and "These match some of them: red." in page
    assert "Nothing matched: zebra." in page
    assert f"/images/{ball.pk}/" in page
    api = client.get("/api/v1/images", {"q": "red zebra", "mode": "keyword"}).json()
    assert api["reason"] == "some_words" and api["matched_words"] == ["red"]
    assert api["unmatched_words"] == ["zebra"]
    assert {row["id"] for row in api["results"]} == {ball.pk, both.pk}  # both are red


def test_some_of_the_words_in_chinese_leaves_out_function_words(media) -> None:
    ball = record("一只红色的球")
    cat = record("一只猫在睡觉")
    results = search_images(query="红色的猫", mode="keyword")
    assert sorted(ids(results)) == sorted([ball.pk, cat.pk])
    assert "的" not in results.some_words and set(results.some_words) >= {"红色", "猫"}


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_words_with_no_meaning_together_fall_back_to_each_words_meaning(
    media, monkeypatch, mode
) -> None:
    """The demo's "red cat": both words known, no red cat, so the whole query's best cosine
    is under the model's nonsense bound. Each word's own vector still finds its pictures."""
    model = embedding_model_ensure_registered(model=active_embedding_model())
    EmbeddingModel.objects.filter(pk=model.pk).update(nonsense_cosine=0.5)
    ball = record("a ball", axis(0, 0.1))
    cat = record("a sleeping animal", axis(1, 0.1))
    record("a car", axis(2))
    vectors = {"red cat": axis(7), "red": axis(0), "cat": axis(1)}
    monkeypatch.setattr(
        "search.selectors.query_vectors.query_text_vector",
        lambda query, model: list(unit(vectors[query])),
    )
    results = search_images(query="red cat", mode=mode)
    assert sorted(ids(results)) == sorted([ball.pk, cat.pk])
    assert results.some_words == ["red", "cat"] and results.no_meaning
    assert all(hit.vector_score and hit.vector_score > 0.9 for hit in results.hits)


def test_the_page_lists_some_of_the_words_in_the_readers_language(media, client) -> None:
    record("一只红色的球")
    record("一只猫在睡觉")
    page = client.get(
        "/search/", {"q": "红色的猫", "mode": "keyword"}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    assert "以下记录符合其中一部分：红色、猫。" in page and "missing-words" not in page
