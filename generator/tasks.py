"""Thin Celery tasks: take ids, call services. Renders go to the `gpu` queue, the sweeper to
`cpu` (config/settings.py).

Services publish these by name (generator/services/queue.py), so importing the worker side
(torch, diffusers) stays out of web processes.
"""

from celery import Task, current_app, shared_task

from generator.pool_warmup import warm_pool_processes
from generator.services.queue import RENDER_TASK, REPRODUCE_TASK
from generator.services.rendering import render_job_run, reproduction_run, warm_default_model
from generator.services.sweeper import jobs_sweep
from generator.worker_start import RecoverJobsOnConnect

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


# Each pool process keeps its pipeline between jobs: load it before the first job waits.
warm_pool_processes(queue="gpu", warm=warm_default_model)
# Each (re)connection to the broker recovers what a dead worker or a lost broker left behind.
current_app.steps["consumer"].add(RecoverJobsOnConnect)
