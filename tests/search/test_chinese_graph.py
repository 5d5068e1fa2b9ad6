"""lang:zh walks the Chinese prompts' own graph: ImageEmbedding.chinese_prompt follows the
record's prompt through the database's triggers however either row is written, agrees with the
search box's CHINESE_CHARACTERS, migration search 0011 sets it for vectors stored before it, and
the planner walks the partial index it conditions."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from engine.search_query import CHINESE_CHARACTERS
from generator.models import Image
from generator.services.records import image_keywords_index
from search.models import EMBEDDING_DIM, ImageEmbedding
from search.selectors import SearchFilters, active_model_name, search_images
from search.selectors import vector as vector_module
from search.services import image_sketches_update
from tests.factories import ImageFactory


def unit(seed: int) -> list[float]:
    vector = np.random.default_rng(seed).standard_normal(EMBEDDING_DIM)
    return (vector / np.linalg.norm(vector)).tolist()


def embed(image: Image, seed: int = 0) -> ImageEmbedding:
    return ImageEmbedding.objects.create(
        image=image, model_name=active_model_name(), dim=EMBEDDING_DIM, embedding=unit(seed)
    )


def chinese(image: Image) -> bool:
    return ImageEmbedding.objects.values_list("chinese_prompt", flat=True).get(image=image)


@pytest.mark.django_db
def test_the_flag_follows_the_prompt_however_either_row_is_written(media_root) -> None:
    cat, 猫, mixed = (ImageFactory(prompt=p) for p in ("a cat", "一只猫", "a cat, 猫, 4k"))
    for seed, image in enumerate((cat, 猫, mixed)):
        embed(image, seed)
    assert (chinese(cat), chinese(猫), chinese(mixed)) == (False, True, True)
    # Moved to another record (plain SQL too): recomputed from that record's prompt.
    ImageEmbedding.objects.filter(image=猫).delete()
    ImageEmbedding.objects.filter(image=cat).update(image=猫)
    assert chinese(猫)
    # A prompt changed by plain SQL: its vectors follow; an unchanged one is not rewritten.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE generator_image SET prompt = 'a dog' WHERE id = %s", [猫.pk])
    assert not chinese(猫)
    # A row written without the column (COPY, a restore of an older dump) gets it too.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM search_imageembedding WHERE image_id = %s", [mixed.pk])
        cursor.execute(
            "INSERT INTO search_imageembedding (image_id, model_name, dim, embedding, created_at)"
            " VALUES (%s, %s, %s, %s::vector, now())",
            [mixed.pk, active_model_name(), EMBEDDING_DIM, str(unit(9))],
        )
    assert chinese(mixed)


@pytest.mark.django_db
def test_the_trigger_agrees_with_the_search_boxs_characters(media_root) -> None:
    """Each end of each range, and characters just outside (kana, hangul, CJK punctuation,
    fullwidth letters): the database's test is the filter's own (lang:zh's partial index)."""
    samples = ["\u3400", "\u4dbf", "\u4e00", "\u9fff", "\uf900", "\ufaff", "長城"]
    samples += ["\u33ff", "\u4dc0", "\ua000", "\uf8ff", "\ufb00", "ア", "가", "。", "Ａ", "cat"]
    for seed, prompt in enumerate(samples):
        image = ImageFactory(prompt=f"x{prompt}x")
        embed(image, seed)
        expected = re.search(CHINESE_CHARACTERS, prompt) is not None
        assert chinese(image) == expected, (prompt, hex(ord(prompt[0])))
        filtered = Image.objects.filter(pk=image.pk, prompt__regex=CHINESE_CHARACTERS).exists()
        assert filtered == expected, prompt


@pytest.mark.django_db
def test_lang_zh_walks_the_chinese_graph_above_the_exact_bound(media_root, settings) -> None:
    """Every lang:zh search over the exact path's bound walks the Chinese graph (which index
    the planner takes at scale: tests/search/test_filtered_recall.py)."""
    settings.SEEDBANK_EXACT_SEARCH_MAX_ROWS = 0
    for seed in range(8):
        image = ImageFactory(prompt=f"长城 {seed}" if seed % 2 else f"a wall {seed}")
        image_keywords_index(image_ids=[image.pk])
        embed(image, seed)
    results = search_images(
        vector=unit(3), mode="vector", filters=SearchFilters(lang="zh"), limit=3
    )
    assert "chinese graph" in results.strategy
    prompts = [hit.image.prompt for hit in results.hits]
    assert prompts[0] == "长城 3"  # the vector itself
    assert len(prompts) == 3 and set(prompts) <= {"长城 1", "长城 3", "长城 5", "长城 7"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("estimate", "graph", "strategy"),
    [
        (10, 3_200, "exact"),  # counted: 4 rows
        (3_100, 3_200, "chinese graph"),  # lang:zh (nearly) alone: its graph
        (3_100, 100_000, "sketch"),  # other filters leave 3 % of it: their sketches
        (60_000, 100_000, "chinese graph"),  # over the sketch bound: the graph whatever share
    ],
)
def test_the_share_of_the_chinese_graph_chooses_walk_or_sketch(
    media_root, settings, monkeypatch, estimate, graph, strategy
) -> None:
    settings.SEEDBANK_EXACT_SEARCH_MAX_ROWS = 2000
    settings.SEEDBANK_SKETCH_SEARCH_MAX_ROWS = 50000
    for seed in range(8):
        image = ImageFactory(prompt=f"长城 {seed}" if seed % 2 else f"a wall {seed}")
        embed(image, seed)
    image_sketches_update()

    def estimated(queryset) -> float:  # the planner's: the filter's, or the Chinese graph's
        return float(graph if queryset.model is ImageEmbedding else estimate)

    monkeypatch.setattr(vector_module, "_estimated_rows", estimated)
    results = search_images(
        vector=unit(5), mode="vector", filters=SearchFilters(lang="zh"), limit=3
    )
    assert strategy in results.strategy
    assert results.hits[0].image.prompt == "长城 5"
    assert all(hit.image.prompt.startswith("长城") for hit in results.hits)


@pytest.mark.django_db(transaction=True)
def test_the_migration_marks_vectors_stored_before_it(media_root) -> None:
    cat, 猫 = ImageFactory(prompt="a cat"), ImageFactory(prompt="一只猫")
    executor = MigrationExecutor(connection)
    executor.migrate([("search", "0010_hnsw_ef_construction_128")])  # no column, no trigger
    with connection.cursor() as cursor:
        for seed, image in enumerate((cat, 猫)):
            cursor.execute(
                "INSERT INTO search_imageembedding (image_id, model_name, dim, embedding,"
                " created_at) VALUES (%s, %s, %s, %s::vector, now())",
                [image.pk, active_model_name(), EMBEDDING_DIM, str(unit(seed))],
            )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert not chinese(cat) and chinese(猫)
