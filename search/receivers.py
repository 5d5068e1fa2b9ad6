"""What search does when records change elsewhere (connected in SearchConfig.ready)."""

from __future__ import annotations

from typing import Any

from generator.signals import records_ready
from search.services import image_embedding_enqueue


def embed_ready_records(sender: Any, *, image_ids: list[int], **kwargs: Any) -> None:
    for image_id in image_ids:
        image_embedding_enqueue(image_id=image_id)


def connect() -> None:
    records_ready.connect(embed_ready_records, dispatch_uid="search.embed_ready_records")
