"""Thin Celery tasks: take ids, call services. Routed to the `gpu` queue (config/settings.py).

Services publish these by name (generator/services/queue.py), so importing the worker side
(torch, diffusers) stays out of web processes.
"""

from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from generator.services.queue import RENDER_TASK, REPRODUCE_TASK
from generator.services.rendering import render_job_run, reproduction_run, warm_default_model


@shared_task(name=RENDER_TASK)
def run_render_job(job_id: int) -> None:
    render_job_run(job_id=job_id)


@shared_task(name=REPRODUCE_TASK)
def run_reproduction(reproduction_id: int) -> None:
    reproduction_run(reproduction_id=reproduction_id)


@worker_ready.connect
def load_default_model(**kwargs: Any) -> None:
    # Solo pool: tasks run in this very process, so the loaded pipeline serves every job.
    warm_default_model()
