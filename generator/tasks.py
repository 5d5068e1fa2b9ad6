"""Thin Celery tasks: take ids, call services. Routed to the `gpu` queue (config/settings.py)."""

from celery import shared_task


@shared_task(name="generator.tasks.run_render_job")
def run_render_job(job_id: int) -> None:
    from generator.services import render_job_run

    render_job_run(job_id=job_id)


@shared_task(name="generator.tasks.run_reproduction")
def run_reproduction(reproduction_id: int) -> None:
    from gallery.services import reproduction_run

    reproduction_run(reproduction_id=reproduction_id)
