"""The job page says where a job stands and where its results are: its place in the queue (the
running jobs count as ahead, and the wait comes from their progress), the record it made, the
record a remix remixes, and a rerun's verdict in the reader's language (the staff table's too).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from engine.recipe import Recipe
from gallery.services import remix_submit
from generator.models import Image, RenderJob, Reproduction
from generator.selectors.jobs import (
    QueuePlace,
    RunningJob,
    job_queue_place,
    queue_wait_estimate,
)
from generator.services.render_jobs import render_job_claim, render_job_create
from generator.services.reproductions import reproduction_create
from tests.config.test_translations import ZH, compiled_catalogue  # noqa: F401 (a fixture)
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def new_job(user, model_version, **changes) -> RenderJob:
    fields = {"model_version_id": model_version.pk, "prompt": "a koi pond", "seed": 3, "steps": 4}
    return render_job_create(owner=user, recipe=Recipe(**fields | changes))


def finished_before(seconds: float) -> None:
    """One finished job in the history the estimate learns from, `seconds` long."""
    now = timezone.now()
    RenderJob.objects.create(
        status=RenderJob.Status.DONE,
        started_at=now - timedelta(seconds=seconds),
        finished_at=now,
    )


def page(client: Client, job: RenderJob, **headers: str) -> str:
    response = client.get(f"/jobs/{job.pk}/", **headers)
    assert response.status_code == 200
    return response.content.decode()


# --- the queue ------------------------------------------------------------------------------


def test_a_job_behind_a_running_one_has_one_job_ahead_and_waits_for_its_rest(
    user, model_version, sent, client
) -> None:
    running = new_job(user, model_version)
    queued = new_job(user, model_version, seed=4)
    finished_before(10.0)
    render_job_claim(job_id=running.pk, worker="gpu@a")
    started = timezone.now()
    RenderJob.objects.filter(pk=running.pk).update(started_at=started - timedelta(seconds=4))

    place = job_queue_place(job=queued, now=started)
    assert (place.ahead, place.running) == (1, 1)
    assert place.estimate_seconds == pytest.approx(6.0, abs=0.1)  # 10 s typical, 4 s in

    # Its own progress outranks history: 1 step of 4 in 4 s is 16 s in all, 12 s to go.
    RenderJob.objects.filter(pk=running.pk).update(progress_step=1, progress_total=4)
    place = job_queue_place(job=queued, now=started)
    assert place.estimate_seconds == pytest.approx(12.0, abs=0.1)

    client.force_login(user)
    html = page(client, queued)
    assert "1 job ahead (1 rendering now)" in html
    assert "0 jobs ahead" not in html
    assert "starts in about" in html


@pytest.mark.usefixtures("compiled_catalogue")
def test_the_queue_texts_job_js_fills_in_are_chinese_with_their_placeholders(
    user, model_version, sent, client
) -> None:
    render_job_claim(job_id=new_job(user, model_version).pk, worker="gpu@a")
    queued = new_job(user, model_version, seed=4)
    client.force_login(user)
    html = page(client, queued, **ZH)
    assert 'data-ahead-many="前面还有 %(ahead)s 个任务"' in html
    assert 'data-rendering="（其中 %(running)s 个正在渲染）"' in html
    assert 'data-next="排在最前"' in html and "%%" not in html
    assert "前面还有 1 个任务（其中 1 个正在渲染）" in html


def test_the_wait_is_the_running_jobs_rest_plus_the_queue_over_the_busy_workers() -> None:
    half_done = RunningJob(elapsed=5.0, step=2, total=4)  # 10 s in all: 5 s to go
    just_started = RunningJob(elapsed=1.0, step=0, total=0)  # typical 8 s: 7 s to go
    assert queue_wait_estimate(running=[half_done], queued_ahead=0, typical=8.0) == 5.0
    assert queue_wait_estimate(running=[half_done], queued_ahead=2, typical=8.0) == 21.0
    # Two workers: their work shared between them.
    assert queue_wait_estimate(
        running=[half_done, just_started], queued_ahead=1, typical=8.0
    ) == pytest.approx((5.0 + 7.0 + 8.0) / 2)
    # No history: the running job's own pace stands in; nothing to go by: no estimate.
    assert queue_wait_estimate(running=[half_done], queued_ahead=1, typical=None) == 15.0
    assert queue_wait_estimate(running=[just_started], queued_ahead=0, typical=None) is None
    assert queue_wait_estimate(running=[], queued_ahead=0, typical=None) == 0.0


def test_the_first_job_of_an_idle_queue_is_next_in_line(user, model_version, sent, client) -> None:
    job = new_job(user, model_version)
    client.force_login(user)
    html = page(client, job)
    shown = html.split('data-testid="job-queue"')[1].split(">", 1)[1].split("</span>")[0]
    assert shown == "next in line"
    assert job_queue_place(job=job) == QueuePlace(ahead=0, running=0, estimate_seconds=None)


# --- what a job made, and what it remixes ---------------------------------------------------


def test_a_finished_job_links_to_its_record(user, model_version, sent, client) -> None:
    job = new_job(user, model_version)
    (image,) = job.images.all()
    client.force_login(user)
    queued = page(client, job)
    assert 'data-testid="job-records" hidden' in queued  # shown by job.js when it finishes

    RenderJob.objects.filter(pk=job.pk).update(status=RenderJob.Status.DONE)
    Image.objects.filter(pk=image.pk).update(status=Image.Status.READY)
    done = page(client, job)
    records = done.split('data-testid="job-records"')[1].split("</p>")[0]
    assert "hidden" not in records.split(">")[0]
    assert f'href="/images/{image.pk}/"' in records and f"Open record #{image.pk}" in records


def test_a_remix_job_says_which_record_it_remixes(user, model_version, sent, client) -> None:
    parent = ImageFactory(model_version=model_version, owner=user, prompt="a koi pond")
    recipe = dataclasses.replace(parent.recipe(), prompt="a koi pond at night")
    job = remix_submit(owner=user, parent=parent, recipe=recipe)
    (child,) = job.images.all()
    client.force_login(user)
    html = page(client, job)
    remix = html.split('data-testid="job-remix-of"')[1].split("</p>")[0]
    assert f'href="/images/{parent.pk}/"' in remix and f"record #{parent.pk}" in remix
    assert f'href="/images/{parent.pk}/diff/{child.pk}/"' in remix

    plain = new_job(user, model_version, seed=8)
    assert 'data-testid="job-remix-of"' not in page(client, plain)


# --- a rerun's verdict ----------------------------------------------------------------------


def rerun_with_verdict(user, model_version, verdict: str) -> tuple[Image, RenderJob]:
    image = ImageFactory(model_version=model_version, owner=user)
    reproduction = reproduction_create(image=image, requested_by=user)
    Reproduction.objects.filter(pk=reproduction.pk).update(
        verdict=verdict, finished_at=timezone.now(), max_abs_diff=0, psnr=99.0
    )
    RenderJob.objects.filter(pk=reproduction.job_id).update(status=RenderJob.Status.DONE)
    return image, reproduction.job


@pytest.mark.usefixtures("compiled_catalogue")
def test_a_rerun_heading_and_verdict_follow_the_check_in_the_readers_language(
    user, model_version, sent, client
) -> None:
    image = ImageFactory(model_version=model_version, owner=user)
    reproduction = reproduction_create(image=image, requested_by=user)
    client.force_login(user)
    assert f"Rerunning #{image.pk}</h1>" in page(client, reproduction.job)

    Reproduction.objects.filter(pk=reproduction.pk).update(
        verdict=Reproduction.Verdict.BIT_IDENTICAL, finished_at=timezone.now(), max_abs_diff=0
    )
    RenderJob.objects.filter(pk=reproduction.job_id).update(status=RenderJob.Status.DONE)
    english = page(client, reproduction.job)
    assert f"Rerun of #{image.pk}: bit-identical</h1>" in english
    assert "Rerunning" not in english
    chinese = page(client, reproduction.job, **ZH)
    assert f"重跑 #{image.pk}：逐位一致</h1>" in chinese
    assert "bit-identical" not in chinese.replace("verdict-bit-identical", "")

    RenderJob.objects.filter(pk=reproduction.job_id).update(status=RenderJob.Status.FAILED)
    assert f"Rerun of #{image.pk} failed</h1>" in page(client, reproduction.job)


@pytest.mark.usefixtures("compiled_catalogue")
def test_the_staff_verdict_table_speaks_chinese(staff_user, model_version, sent, client) -> None:
    rerun_with_verdict(staff_user, model_version, Reproduction.Verdict.VISUALLY_IDENTICAL)
    client.force_login(staff_user)
    chinese = client.get("/staff/", **ZH).content.decode()
    rows = chinese.split('data-testid="verdict-row">')[1:]
    assert [row.split("<")[0] for row in rows] == ["视觉一致"]
    english = client.get("/staff/").content.decode()
    assert 'data-testid="verdict-row">visually identical<' in english
