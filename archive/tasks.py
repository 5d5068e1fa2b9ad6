"""Thin Celery tasks for the `cpu` queue: an uploaded import runs here, not in the request."""

from celery import shared_task

from archive.services.imports import (
    IMPORT_TASK,
    RESUME_TASK,
    SWEEP_UPLOADS_TASK,
    import_run_execute,
    import_uploads_sweep,
    imports_resume,
)
from archive.services.prompts import EMBED_PROMPTS_TASK, source_prompts_embed


@shared_task(name=IMPORT_TASK)
def import_run(run_id: int) -> None:
    import_run_execute(run_id=run_id)


@shared_task(name=RESUME_TASK)
def resume_imports() -> None:
    # A worker killed mid-import leaves its run "running"; this picks it up again.
    imports_resume()


@shared_task(name=SWEEP_UPLOADS_TASK)
def sweep_stale_uploads() -> None:
    # A stopped run's uploaded files stay on disk until this deletes them.
    import_uploads_sweep()


@shared_task(name=EMBED_PROMPTS_TASK)
def embed_source_prompts() -> None:
    # Imported prompts wait (embedding_model blank) until a drain embeds them.
    source_prompts_embed()
