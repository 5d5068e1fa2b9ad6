"""Thin Celery tasks: take ids, call services. Renders go to the `gpu` queue, the sweeper to
`cpu` (config/settings.py).

Services publish these by name (generator/services/queue.py), so importing the worker side
(torch, diffusers) stays out of web processes.
"""

from typing import Any

from celery import Task, shared_task
from celery.signals import celeryd_after_setup, worker_process_init

from generator.services.queue import RENDER_TASK, REPRODUCE_TASK
from generator.services.rendering import render_job_run, reproduction_run, warm_default_model
from generator.services.sweeper import jobs_sweep

SWEEP_TASK = "generator.tasks.sweep_jobs"


@shared_task(name=RENDER_TASK, bind=True)
def run_render_job(self: Task, job_id: int) -> None:
    render_job_run(job_id=job_id, worker=self.request.hostname or "")


@shared_task(name=REPRODUCE_TASK, bind=True)
def run_reproduction(self: Task, reproduction_id: int) -> None:
    reproduction_run(reproduction_id=reproduction_id, worker=self.request.hostname or "")


@shared_task(name=SWEEP_TASK)
def sweep_jobs() -> None:
    jobs_sweep()


_renders_here = False


@celeryd_after_setup.connect
def note_the_queues(sender: str, instance: Any, **kwargs: Any) -> None:
    # In the worker's main process, before the pool forks: does this worker render?
    global _renders_here
    _renders_here = "gpu" in instance.app.amqp.queues.consume_from


@worker_process_init.connect
def load_default_model(**kwargs: Any) -> None:
    # Each pool process keeps its pipeline between jobs: load it before the first job waits.
    # (CELERY_WORKER_PROC_ALIVE_TIMEOUT gives this longer than Celery's 4 s default.)
    if _renders_here:
        warm_default_model()
