"""Thin Celery tasks for the `cpu` queue: an uploaded import runs here, not in the request."""

from celery import shared_task

from archive.services.imports import IMPORT_TASK, import_run_execute


@shared_task(name=IMPORT_TASK, acks_late=True)
def import_run(run_id: int) -> None:
    # acks_late: a worker killed mid-import leaves the message queued; running it again
    # resumes (imports are idempotent by source key).
    import_run_execute(run_id=run_id)
