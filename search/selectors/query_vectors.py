"""Query vectors: the CLIP text embedding of words (cached per process, one model load per
process), a stored record's vector, an uploaded picture's."""

from __future__ import annotations

import logging
import threading
from array import array
from functools import lru_cache
from typing import Any

from engine.keywords import segment
from generator.models import Image
from search.models import EmbeddingModel, ImageEmbedding
from search.selectors.embedding_models import active_embedding_model

logger = logging.getLogger(__name__)


def text_embedder_warm() -> None:
    """Load the active CLIP model and jieba's dictionary in this process (web workers call it
    from a thread at start; each costs a second or more on first use). Thread-safe: a search
    that comes meanwhile waits for the same load instead of starting a second one."""
    segment("预热 warm-up")
    try:
        query_text_vector("warm-up", active_embedding_model())
    except Exception:  # a missing model must not stop the site; searches will say so
        logger.exception("could not load the CLIP model ahead of the first search")


# One load per process, whichever thread asks first (the warm-up thread or a search): loaded
# twice at once, it would cost twice the time and, for a while, twice the memory.
_text_model_lock = threading.Lock()


def query_text_vector(query: str, model: EmbeddingModel) -> list[float]:
    """`model`'s text embedding of a query (cached per process): other apps' searches by
    meaning over text (archive's imported prompts) share the search box's encoder and cache."""
    return list(_text_vector_cached(model.path, query))


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
