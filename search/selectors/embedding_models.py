"""The active CLIP model: its identity (config name @ weights digest) and the cosine bounds it
declares for itself. Only the active model's vectors are ever compared."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

from engine.weights import files_digest
from search.models import EMBEDDING_DIM, EmbeddingModel

TINY_CLIP_NAME = "seedbank-tiny-clip"  # engine.tiny_models: random weights, for tests
CLIP_CONFIG = "open_clip_config.json"


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
