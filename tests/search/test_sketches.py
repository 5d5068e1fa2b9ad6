"""Records' sketches (generator.models.Image.sketch) follow the active model's vectors: written
with each vector, rewritten for every record when another model becomes active, and unchanged
rows are not written again."""

from __future__ import annotations

import numpy as np
import pytest

from search.models import EMBEDDING_DIM, EmbeddingModel, ImageEmbedding
from search.selectors import active_embedding_model
from search.services import (
    embedding_model_activate,
    embedding_model_ensure_registered,
    image_sketches_update,
)
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def _signs(vector: np.ndarray) -> str:
    return "".join("1" if x > 0 else "0" for x in vector)


def test_sketches_follow_the_active_models_vectors(media_root) -> None:
    rng = np.random.default_rng(3)
    active = embedding_model_ensure_registered(model=active_embedding_model())
    other = EmbeddingModel.objects.create(name="other@00000000", path=active.path, dim=512)
    images = ImageFactory.create_batch(3)
    mine = {i.pk: rng.standard_normal(EMBEDDING_DIM) for i in images}
    theirs = {i.pk: rng.standard_normal(EMBEDDING_DIM) for i in images}
    for pk in mine:
        ImageEmbedding.objects.create(
            image_id=pk, model_name=active.name, dim=EMBEDDING_DIM, embedding=mine[pk]
        )
        ImageEmbedding.objects.create(
            image_id=pk, model_name=other.name, dim=EMBEDDING_DIM, embedding=theirs[pk]
        )

    assert image_sketches_update(image_ids=[images[0].pk]) == 1
    images[0].refresh_from_db()
    assert images[0].sketch == _signs(mine[images[0].pk])
    assert image_sketches_update() == 2  # the other two; the first is unchanged
    assert image_sketches_update() == 0

    embedding_model_activate(model=other)
    for image in images:
        image.refresh_from_db()
        assert image.sketch == _signs(theirs[image.pk])
