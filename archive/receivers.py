"""What the archive does when things change in the apps below it (connected in
ArchiveConfig.ready)."""

from __future__ import annotations

from typing import Any

from archive.services.prompts import source_prompts_reembed
from search.signals import embedding_model_activated


def prompts_follow_the_active_model(sender: Any, **kwargs: Any) -> None:
    """Imported prompts' vectors came from the old model's text encoder: embed them again."""
    source_prompts_reembed()


def connect() -> None:
    embedding_model_activated.connect(
        prompts_follow_the_active_model, dispatch_uid="archive.prompts_follow_the_active_model"
    )
