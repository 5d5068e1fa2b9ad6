"""What search does when records change elsewhere (connected in SearchConfig.ready)."""

from __future__ import annotations

from typing import Any

from generator.signals import records_ready
from search.services import images_embedding_enqueue


def embed_ready_records(sender: Any, *, image_ids: list[int], **kwargs: Any) -> None:
    images_embedding_enqueue(image_ids=list(image_ids))


def connect() -> None:
    records_ready.connect(embed_ready_records, dispatch_uid="search.embed_ready_records")
