"""Fair use of the GPU (issue 26): a job's cost in megapixel-steps, the daily budget it is
counted against, the work one user may have waiting at once, and the per-job cap."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import translation

from engine.pricing import megapixel_steps, recipe_megapixel_steps
from engine.recipe import Hires, Recipe
from generator.models import RenderJob
from generator.selectors.quotas import QuotaExceeded
from generator.services.render_jobs import render_job_cancel, render_job_create
from generator.services.reproductions import reproduction_create
from tests.factories import ImageFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


SMALL = 512 * 512 / 1e6 * 10  # 2.62 megapixel-steps
DEFAULT = 512 * 512 / 1e6 * 30  # 7.86: the README's "default" image


def recipe(model_version, **changes) -> Recipe:
    fields = {"model_version_id": model_version.pk, "prompt": "a lighthouse", "seed": 5,
              "width": 512, "height": 512, "steps": 30}  # fmt: skip
    return Recipe(**fields | changes)


def ran(job: RenderJob) -> RenderJob:
    """As if a worker had taken and finished it (tests publish nothing)."""
    RenderJob.objects.filter(pk=job.pk).update(status=RenderJob.Status.DONE, attempts=1)
    return job


def test_the_cost_formula() -> None:
    assert megapixel_steps(width=1024, height=1024, images=8, steps=150) == pytest.approx(1258.29)
    base = Recipe(prompt="x", width=512, height=512, steps=30)
    assert recipe_megapixel_steps(base) == pytest.approx(DEFAULT)
    assert recipe_megapixel_steps(replace(base, batch_size=4)) == pytest.approx(4 * DEFAULT)
    # A 2x hires pass renders 1024² again, as many steps as the first pass unless it says.
    hires = replace(base, hires=Hires(scale=2.0))
    assert recipe_megapixel_steps(hires) == pytest.approx(DEFAULT + 4 * DEFAULT)
    hires10 = replace(base, batch_size=2, hires=Hires(scale=2.0, steps=10))
    assert recipe_megapixel_steps(hires10) == pytest.approx(2 * (DEFAULT + 1024 * 1024 / 1e6 * 10))


def test_jobs_record_their_cost_txt2img_batch_and_hires(user, model_version, sent) -> None:
    plain = render_job_create(owner=user, recipe=recipe(model_version))
    batch = render_job_create(owner=user, recipe=recipe(model_version, batch_size=4))
    hires = render_job_create(
        owner=user, recipe=recipe(model_version, width=256, height=256, hires=Hires(scale=2.0))
    )
    assert plain.cost == pytest.approx(DEFAULT)
    assert batch.cost == pytest.approx(4 * DEFAULT)
    assert hires.cost == pytest.approx(DEFAULT / 4 + DEFAULT)
    hires.refresh_from_db()
    assert hires.cost == pytest.approx(DEFAULT * 1.25)  # stored, not only on the instance


def test_reruns_record_their_cost(user, model_version, sent) -> None:
    parent = ImageFactory(model_version=model_version, width=512, height=512, steps=30,
                          batch_size=3)  # fmt: skip
    whole = reproduction_create(image=parent, requested_by=user)
    alone = reproduction_create(image=parent, requested_by=user, whole_batch=False)
    assert whole.job.cost == pytest.approx(3 * DEFAULT)
    assert alone.job.cost == pytest.approx(DEFAULT)


@override_settings(
    SEEDBANK_QUOTA_MEGAPIXEL_STEPS_PER_DAY=20, SEEDBANK_QUOTA_INFLIGHT_MEGAPIXEL_STEPS=1000
)
def test_the_daily_budget_counts_cost_a_big_job_is_refused_while_small_ones_pass(
    user, model_version, sent
) -> None:
    for seed in (1, 2):
        ran(render_job_create(owner=user, recipe=recipe(model_version, seed=seed, steps=10)))
    big = recipe(model_version, batch_size=2)  # 15.7: 5.2 spent + 15.7 > 20
    with pytest.raises(QuotaExceeded) as refused:
        render_job_create(owner=user, recipe=big)
    assert str(refused.value) == (
        "Daily GPU budget reached: 5 of 20 megapixel-steps used in the last 24 hours, and this "
        "job needs 15.7. It frees up as your earlier renders pass 24 hours; smaller, fewer or "
        "shorter images cost less."
    )
    # The image count is far from spent (3 of 200): only the cost refused it.
    render_job_create(owner=user, recipe=recipe(model_version, seed=3, steps=10))
    assert RenderJob.objects.count() == 3


@override_settings(SEEDBANK_QUOTA_MEGAPIXEL_STEPS_PER_DAY=20)
def test_reruns_spend_the_daily_budget(user, model_version, sent) -> None:
    parent = ImageFactory(model_version=model_version, width=512, height=512, steps=30,
                          batch_size=2)  # fmt: skip
    ran(reproduction_create(image=parent, requested_by=user).job)  # 15.7
    with pytest.raises(QuotaExceeded, match="Daily GPU budget"):
        render_job_create(owner=user, recipe=recipe(model_version))


@override_settings(
    SEEDBANK_QUOTA_MEGAPIXEL_STEPS_PER_DAY=10, SEEDBANK_QUOTA_INFLIGHT_MEGAPIXEL_STEPS=10
)
def test_jobs_that_never_ran_cost_nothing(user, model_version, sent) -> None:
    cancelled = render_job_create(owner=user, recipe=recipe(model_version))
    render_job_cancel(job=cancelled, by=user)  # before any worker took it
    unsent = render_job_create(owner=user, recipe=recipe(model_version, seed=9))
    RenderJob.objects.filter(pk=unsent.pk).update(sent_at=None)  # the broker was down
    render_job_cancel(job=unsent, by=user)
    # Two 7.9 jobs went nowhere: a third fits the budget of 10 and the in-flight limit of 10.
    ran(render_job_create(owner=user, recipe=recipe(model_version, seed=11)))
    with pytest.raises(QuotaExceeded, match="Daily GPU budget reached: 8 of 10"):
        render_job_create(owner=user, recipe=recipe(model_version, seed=12))


@override_settings(SEEDBANK_QUOTA_INFLIGHT_MEGAPIXEL_STEPS=20, SEEDBANK_MAX_JOB_MEGAPIXEL_STEPS=20)
def test_work_waiting_for_the_gpu_at_once_is_limited(user, staff_user, model_version, sent):
    first = render_job_create(owner=user, recipe=recipe(model_version, seed=1))
    second = render_job_create(owner=user, recipe=recipe(model_version, seed=2))
    with pytest.raises(QuotaExceeded) as refused:
        render_job_create(owner=user, recipe=recipe(model_version, seed=3))
    assert str(refused.value) == (
        "Too much work waiting: your queued and rendering jobs come to 15.7 megapixel-steps "
        "and this one needs 7.9, but at most 20 may wait for the GPU at once. Submit it when "
        "an earlier job finishes."
    )
    # Running counts as waiting; finished or cancelled does not.
    RenderJob.objects.filter(pk=first.pk).update(status=RenderJob.Status.RUNNING, attempts=1)
    with pytest.raises(QuotaExceeded):
        render_job_create(owner=user, recipe=recipe(model_version, seed=3))
    ran(first)
    render_job_cancel(job=second, by=user)
    render_job_create(owner=user, recipe=recipe(model_version, seed=3))
    render_job_create(owner=user, recipe=recipe(model_version, seed=4))
    # Staff are exempt; other users have their own allowance.
    for seed in range(3):
        render_job_create(owner=staff_user, recipe=recipe(model_version, seed=seed))


@override_settings(SEEDBANK_QUOTA_MEGAPIXEL_STEPS_PER_DAY=10)
def test_quota_messages_are_in_the_readers_language(user, model_version, sent) -> None:
    ran(render_job_create(owner=user, recipe=recipe(model_version)))
    with translation.override("zh-hans"), pytest.raises(QuotaExceeded) as refused:
        render_job_create(owner=user, recipe=recipe(model_version, seed=2))
    assert "Daily" not in str(refused.value) and "10" in str(refused.value)


def test_the_per_job_cap_refuses_the_measured_job_with_its_limit(user, model_version) -> None:
    # Issue 26's measurement: each number within its own limit, together ~1258.
    huge = recipe(model_version, width=1024, height=1024, steps=150, batch_size=8)
    with pytest.raises(ValidationError) as refused:
        render_job_create(owner=user, recipe=huge)
    assert refused.value.message_dict == {
        "__all__": [
            "This job is too big: 1258.3 megapixel-steps (width × height in megapixels × steps "
            "× images, hires pass included), and one job may take at most 160. Lower the size, "
            "the steps or the batch size."
        ]
    }
    assert not RenderJob.objects.exists()
    with override_settings(SEEDBANK_MAX_JOB_MEGAPIXEL_STEPS=5):
        with pytest.raises(ValidationError, match="at most 5\\. "):
            render_job_create(owner=user, recipe=recipe(model_version))
