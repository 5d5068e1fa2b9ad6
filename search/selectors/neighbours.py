"""A record's neighbours (similar images, near-duplicates) and an uploaded picture's
near-duplicates in the archive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generator.models import Image
from generator.selectors.records import images_visible_to
from search.selectors.embedding_models import active_embedding_model, near_duplicate_bound
from search.selectors.hits import SearchHit
from search.selectors.query_vectors import image_vector, uploaded_image_vector
from search.selectors.ranking import search_images
from search.selectors.vector import vector_ranked


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
    found, _ = vector_ranked(
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
