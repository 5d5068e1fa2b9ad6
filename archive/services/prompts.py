"""Prompt-only records: imported rows Seedbank cannot render as their source did, kept findable
by their prompt (words and meaning), and rendered here on request as new records whose lineage
points at the row."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from celery import current_app
from django.db import connection, transaction

from archive.models import PromptRender, SourcePrompt, SourceRecord
from engine.imports.source import SourceRecipe
from engine.keywords import segment
from engine.recipe import Recipe
from generator.models import RenderJob
from generator.services.queue import BROKER_ERRORS
from generator.services.render_jobs import render_job_create
from search.selectors import active_embedding_model
from search.services import embedding_model_ensure_registered

EMBED_PROMPTS_TASK = "archive.tasks.embed_source_prompts"
# Texts per CLIP forward pass: a text costs far less than a picture, and the row locks are
# held only for one batch.
EMBED_PROMPTS_BATCH = 256

# The rows that stay prompt-only: no record stands for them (a queued or imported row has one).
PROMPT_ONLY_STATES = (
    SourceRecord.State.NEEDS_MODEL,
    SourceRecord.State.NEEDS_RESOURCE,
    SourceRecord.State.INCOMPLETE,
)

logger = logging.getLogger(__name__)

# One statement per import batch: the keyword vector is built in SQL as records' are
# (generator.services.records.keyword_vector: English stems + segmented words, prompt weight
# A, negative D) from arrays, joined to the rows just COPYed by their source key.
_INSERT = """
INSERT INTO archive_sourceprompt (source_id, prompt, negative_prompt, known, nsfw, hidden,
    embedding_model, created_at, search_vector)
SELECT record.id, row.prompt, row.negative, row.known::jsonb, row.nsfw, false, '', now(),
    setweight(to_tsvector('english'::regconfig, row.prompt), 'A')
    || setweight(to_tsvector('simple'::regconfig, row.prompt_words), 'A')
    || setweight(to_tsvector('english'::regconfig, row.negative), 'D')
    || setweight(to_tsvector('simple'::regconfig, row.negative_words), 'D')
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
            %s::boolean[])
    AS row(source_key, prompt, prompt_words, negative, negative_words, known, nsfw)
JOIN archive_sourcerecord AS record ON record.source_key = row.source_key
ON CONFLICT (source_id) DO NOTHING
"""


def source_prompts_create(*, records: Iterable[SourceRecord], sources: list[SourceRecipe]) -> int:
    """Make the prompt-only rows of an import batch's records (already written) that have a
    prompt and no record; their vectors follow in a cpu task sent once this commits."""
    by_key = {source.source_key: source for source in sources}
    wanted = [
        by_key[record.source_key]
        for record in records
        if record.state in PROMPT_ONLY_STATES
        and record.source_key in by_key
        and by_key[record.source_key].prompt.strip()
    ]
    if not wanted:
        return 0
    columns: list[list[Any]] = [[] for _ in range(7)]
    for source in wanted:
        values = (
            source.source_key,
            source.prompt,
            segment(source.prompt),
            source.negative_prompt,
            segment(source.negative_prompt),
            json.dumps(_known(source)),
            _source_nsfw(source.raw),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, columns)
        made = cursor.rowcount
    transaction.on_commit(_send_embed)
    return made


# The recipe fields a prompt-only row keeps (the rest of what it said is in its raw metadata).
KNOWN_FIELDS = ("seed", "steps", "guidance", "width", "height", "scheduler")


def _known(source: SourceRecipe) -> dict[str, Any]:
    return {
        name: getattr(source, name)
        for name in KNOWN_FIELDS
        if getattr(source, name) not in (None, "")
    }


def _source_nsfw(raw: dict[str, Any]) -> bool:
    """The source's own flag: Lexica's `nsfw`, DiffusionDB's classifier scores (0-1, 2 for a
    removed picture), as hidden-by-default content the way records' flag is."""
    if raw.get("nsfw") is True:
        return True
    for key in ("image_nsfw", "prompt_nsfw"):
        value = raw.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0.5:
            return True
    return False


def _send_embed() -> None:
    try:
        current_app.send_task(EMBED_PROMPTS_TASK)
    except BROKER_ERRORS as exc:  # the rows wait (embedding_model blank) for beat's next drain
        logger.warning("could not queue a prompt embedding drain (%s)", exc)


def source_prompts_embed(
    *, batch_size: int = EMBED_PROMPTS_BATCH, progress: Callable[[int], None] | None = None
) -> int:
    """Embed every waiting prompt with the active CLIP's text encoder, a batch at a time
    (SKIP LOCKED: concurrent drains split the backlog; a redelivered task finds nothing left).
    Returns how many were embedded."""
    # Imported here: torch and open_clip cost seconds; only the cpu worker needs them.
    from engine import embedder

    model = embedding_model_ensure_registered(model=active_embedding_model())
    done = 0
    while True:
        with transaction.atomic():
            claimed = list(
                SourcePrompt.objects.select_for_update(skip_locked=True)
                .filter(embedding_model="")
                .order_by("created_at")
                .values_list("pk", "prompt")[:batch_size]
            )
            if not claimed:
                return done
            vectors = embedder.embed_texts(model.path, [prompt for _, prompt in claimed])
            # One UPDATE per batch; pgvector reads a vector from its text form.
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE archive_sourceprompt AS prompt SET embedding = row.vector::vector, "
                    "embedding_model = %s FROM unnest(%s::bigint[], %s::text[]) "
                    "AS row(id, vector) WHERE prompt.source_id = row.id",
                    [
                        model.name,
                        [pk for pk, _ in claimed],
                        ["[" + ",".join(repr(float(x)) for x in v) + "]" for v in vectors],
                    ],
                )
        done += len(claimed)
        if progress is not None:
            progress(len(claimed))
        logger.info("embedded %d imported prompts", done)


def source_prompts_reembed() -> int:
    """Send every prompt back to the backlog (after `manage.py reembed` switched models)."""
    count = SourcePrompt.objects.exclude(embedding_model="").update(
        embedding_model="", embedding=None
    )
    transaction.on_commit(_send_embed)
    return count


def source_prompt_render(*, owner: Any, source: SourceRecord, recipe: Recipe) -> RenderJob:
    """Render an imported row's prompt with a model here: a new render job whose records say
    where their prompt came from. The row itself stays prompt-only: nothing made here is shown
    as its original."""
    with transaction.atomic():
        job = render_job_create(owner=owner, recipe=recipe)
        PromptRender.objects.bulk_create(
            [PromptRender(image=image, source=source) for image in job.images.all()]
        )
    return job


def source_prompt_hide(*, source_prompt: SourcePrompt, hidden: bool) -> None:
    SourcePrompt.objects.filter(pk=source_prompt.pk).update(hidden=hidden)
