"""Near-duplicates among ranked hits: the best-ranked of each group whose vectors are within
the model's near-duplicate bound is kept, the rest listed under it."""

from __future__ import annotations

import numpy as np

from search.models import EmbeddingModel, ImageEmbedding
from search.selectors.embedding_models import near_duplicate_bound
from search.selectors.hits import SearchHit


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
