"""Reproduction sweep and evict-and-rerender through the real worker process."""

from __future__ import annotations

import io

import pytest
import requests
from django.core.management import call_command

from engine.provenance import png_chunks
from engine.recipe import Recipe
from generator.models import Image, RenderJob, Reproduction
from generator.services.render_jobs import render_job_create
from tests.e2e.conftest import signed_in_session, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def render_all(owner, model_version, recipes: list[dict]) -> list[Image]:
    jobs = [
        render_job_create(
            owner=owner, recipe=Recipe(model_version_id=model_version.pk, steps=8, **fields)
        )
        for fields in recipes
    ]
    wait_for(lambda: all(RenderJob.objects.get(pk=job.pk).is_finished for job in jobs))
    return list(Image.objects.filter(job__in=jobs).order_by("pk"))


def test_sweep_reports_every_record_bit_identical(live_server, worker_process, model_version, user):
    images = render_all(
        user,
        model_version,
        [
            {"prompt": "a red fox in snow", "seed": 1, "scheduler": "PNDM"},
            {"prompt": "一只猫坐在窗台上", "seed": 2, "scheduler": "DDIM"},
            {"prompt": "a lighthouse", "seed": 3, "scheduler": "K-LMS", "batch_size": 3},
        ],
    )
    assert len(images) == 5 and all(i.status == Image.Status.READY for i in images)

    out = io.StringIO()
    call_command("reproduce", "--all", stdout=out)
    report = out.getvalue()

    assert "bit-identical" in report and "100.0%" in report
    assert "total checked" in report and " 5" in report
    verdicts = set(Reproduction.objects.values_list("verdict", flat=True))
    assert verdicts == {Reproduction.Verdict.BIT_IDENTICAL}


def test_evicted_record_is_rerendered_on_open(
    live_server, worker_process, model_version, user, media_root
):
    (image,) = render_all(user, model_version, [{"prompt": "a koi pond", "seed": 9}])
    original = (media_root / image.image_file.name).read_bytes()
    call_command("reproduce", "--ids", str(image.pk), stdout=io.StringIO())

    out = io.StringIO()
    call_command("evict", "--verified-only", stdout=out)
    assert "Evicted 1 image(s)" in out.getvalue()
    image.refresh_from_db()
    assert not image.image_file and not (media_root / f"images/{image.pk}").exists()

    # A visitor's page view queues nothing; a signed-in user asks, and the worker re-renders.
    page = requests.get(f"{live_server.url}/images/{image.pk}/")
    assert page.status_code == 200 and "Sign in</a> to re-render" in page.text
    assert not Reproduction.objects.filter(purpose=Reproduction.Purpose.RESTORE).exists()
    session = signed_in_session(live_server.url, user.username, "pw-for-tests-1")
    asked = session.post(
        f"{live_server.url}/images/{image.pk}/restore/",
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{live_server.url}/images/{image.pk}/"},
    )
    assert asked.status_code == 200 and "Re-rendering it from the recipe" in asked.text
    wait_for(lambda: Image.objects.get(pk=image.pk).evicted_at is None)
    image.refresh_from_db()
    served = requests.get(f"{live_server.url}{image.image_file.url}")
    # The same bytes but for the Content Credentials, signed afresh for the restored file.
    assert png_chunks.unsigned(served.content) == png_chunks.unsigned(original)
    page = requests.get(f"{live_server.url}/images/{image.pk}/")
    assert "Re-rendering" not in page.text


@pytest.mark.parametrize("mode", ["img2img", "inpaint"])
def test_img2img_and_inpaint_render_and_rerun_through_the_worker(
    live_server, worker_process, model_version, user, mode
):
    from PIL import Image as PILImage

    from generator.models import SourceImage
    from generator.services.records import source_image_store
    from tests.e2e.test_http_loop import finished_job

    init = source_image_store(
        picture=PILImage.new("RGB", (64, 64), (40, 160, 90)), kind=SourceImage.Kind.INIT, owner=user
    )
    mask_picture = PILImage.new("L", (64, 64), 0)
    mask_picture.paste(255, (8, 8, 40, 40))
    mask = source_image_store(picture=mask_picture, kind=SourceImage.Kind.MASK, owner=user)
    fields = {
        "prompt": "a frog",
        "seed": 12,
        "mode": mode,
        "strength": 0.7,
        "init_image_id": init.pk,
        "mask_id": mask.pk if mode == "inpaint" else None,
    }
    (image,) = render_all(user, model_version, [fields])
    assert image.status == Image.Status.READY and image.environment["mode"] == mode

    base = live_server.url
    session = signed_in_session(base, "ada", "pw-for-tests-1")
    form = {
        "model_version": model_version.pk,
        "prompt": image.prompt,
        "negative_prompt": "",
        "seed": image.seed,
        "scheduler": image.scheduler,
        "steps": image.steps,
        "guidance": image.guidance,
        "width": 64,
        "height": 64,
        "precision": "fp32",
        "batch_size": 1,
        "mode": mode,
        "strength": image.strength,
        "init_image_id": image.init_image_id,
        "mask_id": image.mask_id or "",
        "csrfmiddlewaretoken": session.cookies["csrftoken"],
    }
    response = session.post(f"{base}/images/{image.pk}/remix/", data=form, allow_redirects=False)
    assert response.status_code == 302, response.text[:2000]
    job_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    payload = finished_job(session, base, job_id)
    assert payload["reproduction"]["verdict"] == "bit-identical"
