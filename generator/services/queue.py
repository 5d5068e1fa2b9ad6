"""Publishing render work to the broker, by task name (the tasks module imports the services,
not the other way round)."""

from __future__ import annotations

import uuid

from celery import current_app

from generator.models import RenderJob

RENDER_TASK = "generator.tasks.run_render_job"
REPRODUCE_TASK = "generator.tasks.run_reproduction"


def job_send(*, job_id: int, task_name: str, arg: int) -> None:
    """Store the Celery task id on the row *before* publishing, so the worker never races a
    bookkeeping write, and an operator can always revoke what is queued."""
    task_id = str(uuid.uuid4())
    RenderJob.objects.filter(pk=job_id).update(celery_task_id=task_id)
    current_app.send_task(task_name, args=[arg], task_id=task_id)
