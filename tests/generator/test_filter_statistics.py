"""The planner's estimate of correlated filters (migration generator 0022's statistics): a
recipe's fields come together (a model with its size and sampler), and the product of their
separate frequencies, which Postgres uses without multivariate statistics, is several times
too low. The vector search chooses its path and sizes its shortlist from this estimate."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from generator.selectors.records import images_public
from search.selectors import SearchFilters
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def estimated(filters: SearchFilters) -> float:
    plan = json.loads(filters.apply(images_public()).values("pk").explain(format="json"))
    return float(plan[0]["Plan"]["Plan Rows"])


def test_correlated_filters_are_estimated_together(media_root) -> None:
    # Half the records are one model's: DDIM, 128 wide, 40 steps; the other half another's.
    for index in range(400):
        ours = index % 2 == 0
        ImageFactory(
            model_name="sdxl-like" if ours else "sd15-like",
            scheduler="DDIM" if ours else "PNDM",
            width=128 if ours else 64,
            steps=40 if ours else 20,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE generator_image")
    together = estimated(SearchFilters(model="sdxl-like", scheduler="DDIM", width=128))
    # Independent, the planner would expect 400 x 1/2 x 1/2 x 1/2 = 50: it knows it is 200.
    assert 150 <= together <= 260, together
    assert estimated(SearchFilters(scheduler="DDIM", width=64)) < 20  # never together
