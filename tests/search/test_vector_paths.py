"""Which path a filtered vector search takes for the size the planner expects, and when it pays
for a count: only a filter expected near or under the exact path's bound is counted (that path
reads at most that many rows); above it the estimate decides between sketch and graph."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generator.services.records import image_keywords_index
from search.models import EMBEDDING_DIM, ImageEmbedding
from search.selectors import SearchFilters, active_model_name, search_images
from search.selectors import vector as vector_module
from search.services import image_sketches_update
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(media_root, settings) -> list[int]:
    settings.SEEDBANK_EXACT_SEARCH_MAX_ROWS = 2000
    settings.SEEDBANK_SKETCH_SEARCH_MAX_ROWS = 50000
    rng = np.random.default_rng(11)
    name = active_model_name()
    ids = []
    for index in range(40):
        image = ImageFactory(
            prompt=f"a lighthouse {index}", scheduler="DDIM" if index % 2 else "PNDM"
        )
        image_keywords_index(image_ids=[image.pk])
        vector = rng.standard_normal(EMBEDDING_DIM).astype(np.float32)
        ImageEmbedding.objects.create(
            image=image,
            model_name=name,
            dim=EMBEDDING_DIM,
            embedding=vector / np.linalg.norm(vector),
        )
        ids.append(image.pk)
    image_sketches_update()
    return ids


@pytest.mark.parametrize(
    ("estimate", "counted", "strategy"),
    [
        (10, True, "exact"),
        (2900, True, "exact"),  # within 1.5x of the exact bound: the true size (20) decides
        (3100, False, "sketch"),  # the estimate decides: sketch, and its shortlist holds all 20
        (49000, False, "sketch"),
        (51000, False, "hnsw iterative"),
    ],
)
def test_the_estimate_chooses_the_path_and_only_small_filters_are_counted(
    records, monkeypatch, estimate, counted, strategy
) -> None:
    monkeypatch.setattr(vector_module, "_estimated_rows", lambda candidates: float(estimate))
    query = [float(x) for x in ImageEmbedding.objects.get(image_id=records[1]).embedding]
    with CaptureQueriesContext(connection) as captured:
        results = search_images(
            vector=query, mode="vector", filters=SearchFilters(scheduler="DDIM"), limit=5
        )
    counts = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT COUNT")]
    assert bool(counts) == counted
    assert strategy in results.strategy
    assert results.hits[0].image.pk == records[1]  # every path finds the record itself first
    assert all(hit.image.scheduler == "DDIM" for hit in results.hits)
    assert len(results.hits) == 5
