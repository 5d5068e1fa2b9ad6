"""Every accepted job finishes exactly once, with real processes failing for real: a render
worker killed with SIGKILL mid-render (ten times: its pool process or all of it), a broker
stopped and restarted with jobs queued and submitted while it was down, and the database
connection cut during a job.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from django.db import connection

from engine.recipe import Recipe
from gallery.management.commands.runstack import (
    beat_command,
    cpu_worker_command,
    web_command,
    worker_command,
)
from generator.models import Image, RenderJob
from generator.models.jobs import FINISHED
from generator.services.render_jobs import render_job_create
from generator.services.sweeper import jobs_sweep
from tests.e2e.conftest import (
    E2E_LEASE_SECONDS,
    Processes,
    healthy,
    signed_in_session,
    wait_for,
    worker_environment,
)
from tests.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

KILLS = 10
# Long enough (about two seconds here) that the kill lands mid-render.
SLOW_RECIPE = {"prompt": "a slow lighthouse", "steps": 150, "width": 64, "height": 64}


def _assert_stored_once(job: RenderJob, media_root: Path) -> None:
    images = list(job.images.all())
    assert images and all(image.status == Image.Status.READY for image in images)
    for image in images:
        files = sorted(p.name for p in (media_root / "images").glob(f"{image.pk}-*"))
        assert files == [Path(image.image_file.name).name], files  # no orphans of a killed try


def test_a_worker_killed_mid_render_is_requeued_in_seconds_and_done_exactly_once(
    worker_process, model_version, user, media_root
) -> None:
    """Alternately kill -9 the pool process rendering the job (Celery re-delivers its task to
    the replacement process, which takes over from the dead one) and the whole worker (its
    successor releases what it held when it connects). No sweeper runs here."""
    for kill in range(KILLS):
        job = render_job_create(
            owner=user,
            recipe=Recipe(model_version_id=model_version.pk, seed=900 + kill, **SLOW_RECIPE),
        )
        mid_render = RenderJob.objects.filter(
            pk=job.pk, status=RenderJob.Status.RUNNING, progress_step__gte=5
        )
        wait_for(mid_render.exists, timeout=120, interval=0.05)
        job.refresh_from_db()
        lease_at_kill = job.lease_expires_at
        whole_worker = kill % 2 == 1
        if whole_worker:
            worker_process.kill_gpu()
        else:
            os.kill(job.worker_pid, signal.SIGKILL)  # the pool process, as the OOM killer would
        killed_at = time.monotonic()
        if whole_worker:
            worker_process.start_gpu()
        taken_over = RenderJob.objects.filter(pk=job.pk, attempts=2)
        wait_for(taken_over.exists, timeout=120, interval=0.05)
        requeued_s = time.monotonic() - killed_at

        finished = RenderJob.objects.filter(pk=job.pk, status__in=list(FINISHED))
        wait_for(finished.exists, timeout=120)
        job.refresh_from_db()
        assert job.status == RenderJob.Status.DONE, job.error
        assert job.attempts == 2 and job.images.count() == 1
        _assert_stored_once(job, media_root)
        what = "whole worker" if whole_worker else "pool process"
        print(f"kill {kill} ({what}): re-queued and claimed again {requeued_s:.1f} s after")
        if not whole_worker:
            # Taken over while the dead attempt's lease still ran: not the lease's doing (and
            # no sweeper runs here). A new worker's start-up is the machine's time, not ours.
            assert job.started_at < lease_at_kill, (job.started_at, lease_at_kill)


def test_a_cut_database_connection_fails_or_retries_the_job_cleanly(
    worker_process, model_version, user, media_root
) -> None:
    job = render_job_create(
        owner=user, recipe=Recipe(model_version_id=model_version.pk, seed=7, **SLOW_RECIPE)
    )
    mid_render = RenderJob.objects.filter(
        pk=job.pk, status=RenderJob.Status.RUNNING, progress_step__gte=5
    )
    wait_for(mid_render.exists, timeout=120, interval=0.05)
    with connection.cursor() as cursor:  # every other session on this database: the worker's
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    # That cut this process's idle pooled connections too: start the pool afresh.
    connection.close()
    connection.close_pool()

    def settled() -> bool:
        jobs_sweep()
        job.refresh_from_db()
        return job.is_finished

    wait_for(settled, timeout=120, interval=0.5)
    # Either outcome is clean: done exactly once, or failed with its reason; never stuck.
    if job.status == RenderJob.Status.DONE:
        _assert_stored_once(job, media_root)
    else:
        assert job.status == RenderJob.Status.FAILED and job.error
        assert not job.images.filter(status=Image.Status.PENDING).exists()


# --- the broker goes away ---------------------------------------------------------------------


@pytest.fixture
def own_broker(redis_server: RedisServer, media_root: Path) -> tuple[RedisServer, dict[str, str]]:
    env = worker_environment(media_root) | {
        "CELERY_BROKER_URL": redis_server.url(),
        "SEEDBANK_SWEEP_SECONDS": "1",
        "SEEDBANK_WEB_WORKERS": "1",
    }
    return redis_server, env


def test_jobs_survive_a_broker_restart_and_an_outage_at_submit(
    own_broker, model_version, user, tmp_path
) -> None:
    redis, env = own_broker
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # No render worker yet: the first jobs wait in the broker while it restarts.
    processes = Processes(env, tmp_path)
    processes.spawn("web", web_command(f"127.0.0.1:{port}"))
    processes.spawn("beat", beat_command())
    try:
        wait_for(lambda: healthy(base), timeout=120)
        session = signed_in_session(base, user.username, "pw-for-tests-1")

        def submit(n: int) -> int:
            response = session.post(
                f"{base}/api/v1/renders",
                json={"prompt": f"a harbour {n}", "seed": 300 + n, "steps": 4},
                headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": f"{base}/"},
                timeout=30,
            )
            assert response.status_code == 202, response.text  # never a 500
            assert response.json()["status"] == "queued"
            return int(response.json()["id"])

        queued = [submit(n) for n in range(3)]
        assert RenderJob.objects.filter(pk__in=queued, sent_at__isnull=False).count() == 3
        redis.stop()
        during_outage = [submit(n) for n in range(3, 5)]
        assert RenderJob.objects.filter(pk__in=during_outage, sent_at__isnull=True).count() == 2
        redis.start()
        # The sweeper runs on the cpu worker (beat only schedules it).
        processes.spawn("worker", worker_command("restart"))
        processes.spawn("cpu", cpu_worker_command("restart-cpu"))

        jobs = RenderJob.objects.filter(pk__in=queued + during_outage)
        wait_for(lambda: jobs.filter(status=RenderJob.Status.DONE).count() == 5, timeout=180)
        assert sorted(jobs.values_list("attempts", flat=True)) == [1] * 5  # each rendered once
        assert Image.objects.filter(job__in=jobs, status=Image.Status.READY).count() == 5
    finally:
        processes.stop()


assert E2E_LEASE_SECONDS >= 20  # the kill test tells a take-over from an expired lease
