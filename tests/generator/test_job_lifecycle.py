"""A job's life on the real database: exclusive claims, leases, attempts, the sweeper, cancel,
queue position, broker outages at submit and time limits. Publishing is replaced by a recorder
here (unit level); tests/e2e/test_faults.py does the same with real processes and a real broker.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from billiard.exceptions import SoftTimeLimitExceeded
from celery import current_app
from django.test import override_settings
from django.utils import timezone
from kombu.exceptions import OperationalError

from engine.recipe import Recipe
from generator.models import Image, RenderJob
from generator.selectors.jobs import job_queue_place
from generator.services import rendering
from generator.services.render_jobs import (
    JobStopped,
    render_job_cancel,
    render_job_claim,
    render_job_create,
    render_job_done,
    render_job_heartbeat,
)
from generator.services.rendering import render_job_run
from generator.services.sweeper import jobs_sweep

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, list[int]]]:
    sent: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, args, **options: sent.append((name, args))
    )
    return sent


@pytest.fixture
def broker_down(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(current_app, "send_task", refuse)


def new_job(user, model_version, **changes) -> RenderJob:
    fields = {"model_version_id": model_version.pk, "prompt": "a koi pond", "seed": 3, "steps": 4}
    return render_job_create(owner=user, recipe=Recipe(**fields | changes))


def expire_lease(job: RenderJob) -> None:
    RenderJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_running_job_cannot_be_claimed_twice_while_its_lease_lives(
    user, model_version, published
) -> None:
    job = new_job(user, model_version)
    first = render_job_claim(job_id=job.pk, worker="gpu@a")
    assert first is not None and first.attempts == 1 and first.worker == "gpu@a"
    assert render_job_claim(job_id=job.pk, worker="gpu@b") is None  # a duplicate delivery

    expire_lease(job)  # gpu@a died: a delivery after the lease ran out takes over
    second = render_job_claim(job_id=job.pk, worker="gpu@b")
    assert second is not None and second.attempts == 2 and second.claim_token != first.claim_token
    with pytest.raises(JobStopped):  # the first attempt, if it was only slow, learns to stop
        render_job_heartbeat(job=first, step=2, total=4)
    with pytest.raises(JobStopped):
        render_job_done(job=first)
    render_job_heartbeat(job=second, step=2, total=4)


def test_the_sweeper_requeues_a_lost_job_then_gives_up_after_its_attempts(
    user, model_version, published, django_capture_on_commit_callbacks
) -> None:
    job = new_job(user, model_version)
    published.clear()
    with override_settings(SEEDBANK_JOB_MAX_ATTEMPTS=2):
        for attempt in (1, 2):
            assert render_job_claim(job_id=job.pk, worker=f"gpu@{attempt}") is not None
            expire_lease(job)
            with django_capture_on_commit_callbacks(execute=True):
                sweep = jobs_sweep()
            job.refresh_from_db()
            if attempt == 1:
                assert sweep.requeued == 1 and job.status == RenderJob.Status.QUEUED
                assert published == [("generator.tasks.run_render_job", [job.pk])]
        assert sweep.failed == 1
    assert job.status == RenderJob.Status.FAILED
    assert "stopped answering 2 times" in job.error and "gpu@2" in job.error
    assert set(job.images.values_list("status", flat=True)) == {Image.Status.FAILED}


def test_a_live_lease_is_left_alone(user, model_version, published) -> None:
    job = new_job(user, model_version)
    render_job_claim(job_id=job.pk, worker="gpu@a")
    assert jobs_sweep().requeued == 0
    job.refresh_from_db()
    assert job.status == RenderJob.Status.RUNNING


def test_a_broker_outage_at_submit_answers_queued_costs_no_quota_and_is_sent_later(
    client, user, model_version, broker_down, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    client.force_login(user)
    recipe = {"prompt": "a harbour", "steps": 4, "model_version": model_version.pk}
    with override_settings(SEEDBANK_QUOTA_RENDERS_PER_DAY=1):
        for _ in range(2):  # the second passes the 1-image quota: the first never ran
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(
                    "/api/v1/renders", json.dumps(recipe), content_type="application/json"
                )
            assert response.status_code == 202, response.content
            assert response.json()["status"] == "queued"
    assert RenderJob.objects.filter(sent_at__isnull=True).count() == 2

    sent: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, args, **options: sent.append((name, args))
    )
    assert jobs_sweep().sent == 0  # just submitted: their own publish may still be under way
    RenderJob.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    assert jobs_sweep().sent == 2
    assert sorted(args[0] for _, args in sent) == sorted(
        RenderJob.objects.values_list("pk", flat=True)
    )
    assert not RenderJob.objects.filter(sent_at__isnull=True).exists()


def test_an_unsent_job_past_its_owners_quota_fails_instead_of_sending(
    user, model_version, published
) -> None:
    with override_settings(SEEDBANK_QUOTA_RENDERS_PER_DAY=1):
        queued = new_job(user, model_version)
        RenderJob.objects.filter(pk=queued.pk).update(
            sent_at=None, created_at=timezone.now() - timedelta(minutes=1)
        )
        new_job(user, model_version, seed=8)  # took the one render while the first was unsent
        published.clear()
        assert jobs_sweep().sent == 0
    queued.refresh_from_db()
    assert queued.status == RenderJob.Status.FAILED and "quota" in queued.error
    assert published == []


def test_a_job_sent_long_ago_and_never_claimed_is_sent_again(
    user, model_version, published
) -> None:
    job = new_job(user, model_version)
    published.clear()
    RenderJob.objects.filter(pk=job.pk).update(sent_at=timezone.now() - timedelta(hours=1))
    assert jobs_sweep().sent == 1 and published == [("generator.tasks.run_render_job", [job.pk])]


def test_cancelling_a_queued_job_means_it_never_renders(
    user, model_version, published, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    revoked: list[str] = []
    monkeypatch.setattr(current_app.control, "revoke", revoked.append)
    with django_capture_on_commit_callbacks(execute=True):
        job = new_job(user, model_version)  # sent: it has a task id to revoke
    job.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        assert render_job_cancel(job=job, by=user)
    assert job.status == RenderJob.Status.CANCELLED and revoked == [job.celery_task_id]
    render_job_run(job_id=job.pk)  # the task arrives anyway
    job.refresh_from_db()
    assert job.status == RenderJob.Status.CANCELLED and job.attempts == 0
    assert set(job.images.values_list("status", flat=True)) == {Image.Status.FAILED}
    assert not render_job_cancel(job=job, by=user)  # already finished


def test_cancelling_a_running_job_stops_it_and_stores_nothing(
    user, model_version, published, media_root, monkeypatch
) -> None:
    job = new_job(user, model_version, steps=12)
    real_heartbeat = rendering.render_job_heartbeat

    def cancel_midway(*, job, step, total):
        if step >= 3:
            render_job_cancel(job=RenderJob.objects.get(pk=job.pk), by=user)
        real_heartbeat(job=job, step=step, total=total)

    monkeypatch.setattr(rendering, "render_job_heartbeat", cancel_midway)
    monkeypatch.setattr(rendering, "PROGRESS_INTERVAL_SECONDS", 0.0)
    render_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == RenderJob.Status.CANCELLED and job.progress_step < 12
    image = job.images.get()
    assert image.status == Image.Status.FAILED and not image.image_file
    assert not list((media_root / "images").glob(f"{image.pk}-*"))


def test_a_render_past_its_time_limit_fails_with_the_reason(
    user, model_version, published, monkeypatch
) -> None:
    job = new_job(user, model_version)
    assert job.time_limit_seconds and job.time_limit_seconds >= 120

    def too_slow(**kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(rendering, "pipeline_run", too_slow)
    render_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == RenderJob.Status.FAILED
    assert f"time limit ({job.time_limit_seconds} s" in job.error


def test_bigger_recipes_get_longer_time_limits(user, model_version, published) -> None:
    small = new_job(user, model_version, steps=4)
    big = new_job(user, model_version, steps=40, width=128, height=128, batch_size=2)
    assert big.time_limit_seconds > small.time_limit_seconds


def test_queue_place_counts_the_jobs_ahead_and_estimates_from_recent_renders(
    user, model_version, published
) -> None:
    jobs = [new_job(user, model_version, seed=n) for n in range(3)]
    assert job_queue_place(job=jobs[2]).ahead == 2
    assert job_queue_place(job=jobs[2]).estimate_seconds is None  # no history yet
    render_job_claim(job_id=jobs[0].pk, worker="gpu@a")
    now = timezone.now()
    done = new_job(user, model_version, seed=9)
    RenderJob.objects.filter(pk=done.pk).update(
        status=RenderJob.Status.DONE, started_at=now - timedelta(seconds=10), finished_at=now
    )
    place = job_queue_place(job=jobs[2])
    assert (place.ahead, place.running) == (2, 1)  # the running job is ahead too
    # What the running job has left of a typical 10 s (it just started), then 10 s for jobs[1].
    assert place.estimate_seconds == pytest.approx(20.0, abs=1.0)
    jobs[0].refresh_from_db()
    assert job_queue_place(job=jobs[0]) is None  # running: out of the queue


def test_job_page_and_api_show_the_queue_and_cancel(
    client, user, model_version, published, django_user_model
) -> None:
    first = new_job(user, model_version)
    job = new_job(user, model_version, seed=4)
    client.force_login(user)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "1 job ahead" in page and 'data-testid="cancel-form"' in page
    assert client.get(f"/api/v1/jobs/{job.pk}").json()["queue"]["ahead"] == 1

    stranger = django_user_model.objects.create_user("mallory", password="x")
    client.force_login(stranger)
    assert client.post(f"/api/v1/jobs/{job.pk}/cancel").status_code == 404
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 404

    client.force_login(user)
    response = client.post(f"/jobs/{job.pk}/cancel/", follow=True)
    assert "Job cancelled" in response.content.decode()
    assert client.post(f"/api/v1/jobs/{job.pk}/cancel").status_code == 409
    payload = client.post(f"/api/v1/jobs/{first.pk}/cancel").json()
    assert payload["status"] == "cancelled" and payload["queue"] is None
