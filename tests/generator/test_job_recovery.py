"""Recovering a dead worker's job in seconds, on the real database: a re-delivery to the
successor of a killed pool process, the supervisor or a restarted worker releasing what its
predecessor held, a lease kept alive through a step longer than the lease, and queued jobs
re-sent at once when the broker may have lost them. (tests/e2e/test_faults.py kills real
processes.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from celery import current_app
from django.test import override_settings
from django.utils import timezone
from kombu.exceptions import OperationalError

from engine.recipe import Recipe
from generator.models import RenderJob
from generator.services import rendering
from generator.services.lease_keeper import LeaseKeeper
from generator.services.render_jobs import (
    JobStopped,
    jobs_release_worker,
    render_job_cancel,
    render_job_claim,
    render_job_create,
)
from generator.services.rendering import render_job_run
from generator.services.sweeper import jobs_resend_queued, jobs_sweep

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, list[int]]]:
    sent: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, args=(), **options: sent.append((name, args))
    )
    return sent


def new_job(user, model_version, **changes) -> RenderJob:
    fields = {"model_version_id": model_version.pk, "prompt": "a koi pond", "seed": 3, "steps": 4}
    return render_job_create(owner=user, recipe=Recipe(**fields | changes))


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_redelivery_to_the_same_worker_takes_over_from_a_dead_pool_process(
    user, model_version, published
) -> None:
    job = new_job(user, model_version)
    first = render_job_claim(job_id=job.pk, worker="gpu@host", pid=dead_pid())
    assert first is not None
    # The lease is live, but the process that held it is gone: no wait for the lease.
    second = render_job_claim(job_id=job.pk, worker="gpu@host", pid=os.getpid())
    assert second is not None and second.attempts == 2 and second.worker_pid == os.getpid()


def test_a_live_process_keeps_its_job_and_other_hosts_cannot_judge_it(
    user, model_version, published
) -> None:
    job = new_job(user, model_version)
    assert render_job_claim(job_id=job.pk, worker="gpu@host", pid=os.getpid()) is not None
    assert render_job_claim(job_id=job.pk, worker="gpu@host", pid=os.getpid()) is None
    # Another host cannot see the first host's processes: it waits for the lease.
    RenderJob.objects.filter(pk=job.pk).update(worker_pid=dead_pid())
    assert render_job_claim(job_id=job.pk, worker="gpu@elsewhere", pid=1) is None


def test_releasing_a_dead_worker_queues_its_jobs_again_and_sends_them(
    user, model_version, published, django_capture_on_commit_callbacks
) -> None:
    mine, other = new_job(user, model_version), new_job(user, model_version, seed=4)
    render_job_claim(job_id=mine.pk, worker="gpu@a", pid=os.getpid())
    render_job_claim(job_id=other.pk, worker="gpu@b", pid=os.getpid())
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_release_worker(worker="gpu@a") == 1
    mine.refresh_from_db()
    other.refresh_from_db()
    assert (mine.status, mine.claim_token, mine.worker_pid) == (RenderJob.Status.QUEUED, "", None)
    assert other.status == RenderJob.Status.RUNNING
    assert published == [("generator.tasks.run_render_job", [mine.pk])]
    # The re-sent delivery claims it as attempt 2.
    assert render_job_claim(job_id=mine.pk, worker="gpu@a", pid=os.getpid()).attempts == 2


@override_settings(SEEDBANK_JOB_MAX_ATTEMPTS=1)
def test_releasing_a_job_that_used_its_attempts_fails_it_with_the_reason(
    user, model_version, published
) -> None:
    job = new_job(user, model_version)
    render_job_claim(job_id=job.pk, worker="gpu@a", pid=os.getpid())
    jobs_release_worker(worker="gpu@a")
    job.refresh_from_db()
    assert job.status == RenderJob.Status.FAILED and "stopped answering 1 times" in job.error


@pytest.mark.django_db(transaction=True)  # the keeper's thread has its own connection
@override_settings(SEEDBANK_JOB_LEASE_SECONDS=1)
def test_a_step_longer_than_the_lease_is_never_taken_for_a_dead_worker(
    user, model_version, published, media_root, monkeypatch
) -> None:
    """One 'step' of 4 s under a 1 s lease, with the sweeper running throughout: the lease
    keeper renews it from its thread, so the job is neither re-queued nor claimed twice."""
    job = new_job(user, model_version)
    real_render = rendering.pipeline.render_splitting_on_oom

    def slow_first_step(request, *, on_step, **kwargs):
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:  # the sweeper runs while the step is "computing"
            assert jobs_sweep().requeued == 0
            assert render_job_claim(job_id=job.pk, worker="gpu@other", pid=1) is None
            time.sleep(0.3)
        return real_render(request, on_step=on_step, **kwargs)

    monkeypatch.setattr(rendering.pipeline, "render_splitting_on_oom", slow_first_step)
    render_job_run(job_id=job.pk, worker="gpu@host")
    job.refresh_from_db()
    assert job.status == RenderJob.Status.DONE and job.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_the_lease_keeper_tells_the_next_step_when_the_job_was_cancelled(
    user, model_version, published
) -> None:
    job = new_job(user, model_version)
    claimed = render_job_claim(job_id=job.pk, worker="gpu@a", pid=os.getpid())
    with LeaseKeeper(claimed, every=0.05) as keeper:
        time.sleep(0.3)
        keeper.raise_if_lost()  # renewed several times: still held
        render_job_cancel(job=claimed, by=user)
        deadline = time.monotonic() + 10
        while not keeper.lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(JobStopped):
            keeper.raise_if_lost()


def test_a_slow_render_inside_a_transaction_is_not_taken_for_a_lost_job(
    user, model_version, published, media_root, monkeypatch
) -> None:
    """In a transaction (this TestCase's) the keeper's thread could not see the job and took
    it for taken over once a render outlasted lease / 4 (CI on a busy machine: a 6-step render
    stopped "cancelled or taken over"). There the progress writes renew the lease."""
    job = new_job(user, model_version)
    real_render = rendering.pipeline.render_splitting_on_oom

    def slow_render(request, *, on_step, **kwargs):
        time.sleep(0.5)  # ten keeper periods
        return real_render(request, on_step=on_step, **kwargs)

    monkeypatch.setattr(rendering.pipeline, "render_splitting_on_oom", slow_render)
    with override_settings(SEEDBANK_JOB_LEASE_SECONDS=0.2):
        render_job_run(job_id=job.pk, worker="gpu@host")
    job.refresh_from_db()
    assert job.status == RenderJob.Status.DONE and job.images.count() == 1


def test_queued_jobs_are_resent_at_once_when_the_broker_lost_their_messages(
    user, model_version, published
) -> None:
    jobs = [new_job(user, model_version, seed=n) for n in range(3)]
    RenderJob.objects.update(created_at=RenderJob.objects.first().created_at.replace(year=2020))
    published.clear()
    # The broker still holds all three messages: nothing lost, nothing sent.
    assert jobs_resend_queued(waiting_messages=3) == 0
    # It holds two of three: every queued job is sent again (duplicates are refused at claim).
    assert jobs_resend_queued(waiting_messages=2) == 3
    assert sorted(args[0] for _, args in published) == sorted(job.pk for job in jobs)
    assert jobs_resend_queued(waiting_messages=None) == 3  # the broker could not say


def test_a_job_stored_while_the_broker_was_down_is_sent_within_its_owners_budget(
    user, model_version, monkeypatch, settings, django_capture_on_commit_callbacks
) -> None:
    """It already counts as waiting (not twice), and the day's budget is checked by cost."""

    def refuse(*args, **kwargs):
        raise OperationalError("Connection refused.")

    monkeypatch.setattr(current_app, "send_task", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        fits = new_job(user, model_version, seed=1)
        too_much = new_job(user, model_version, seed=2)
    unsent = RenderJob.objects.filter(pk__in=[fits.pk, too_much.pk])
    assert unsent.filter(sent_at__isnull=True).count() == 2
    unsent.update(created_at=timezone.now() - timedelta(minutes=1))
    # The day's budget holds one of them; the in-flight limit exactly both.
    settings.SEEDBANK_QUOTA_MEGAPIXEL_STEPS_PER_DAY = fits.cost * 1.5
    settings.SEEDBANK_QUOTA_INFLIGHT_MEGAPIXEL_STEPS = fits.cost * 2
    sent: list[list[int]] = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args=(), **kw: sent.append(args))
    jobs_sweep()
    too_much.refresh_from_db()
    assert sent == [[fits.pk]]
    assert too_much.status == RenderJob.Status.FAILED and "quota ran out" in too_much.error
