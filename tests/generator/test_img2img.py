"""img2img and inpainting: inputs stored once by content hash, validated uploads, rendering and
reproduction with the real pipeline (in-process; tests/e2e runs them through the worker)."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from generator.models import Image, RenderJob, Reproduction, SourceImage
from generator.services.rendering import render_job_run, reproduction_run
from generator.services.reproductions import reproduction_create

pytestmark = pytest.mark.django_db


def png(mode: str = "RGB", size=(64, 64), fill=(30, 120, 200), box=None) -> io.BytesIO:
    picture = PILImage.new(mode, size, fill if mode == "RGB" else 0)
    if box:
        picture.paste(255, box)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "upload.png"
    return buffer


def form(model_version, **changes) -> dict:
    data = {
        "model_version": model_version.pk,
        "prompt": "a cat",
        "seed": 3,
        "scheduler": "PNDM",
        "steps": 8,
        "guidance": 7.5,
        "width": 64,
        "height": 64,
        "precision": "fp32",
        "batch_size": 1,
        "mode": "img2img",
        "strength": 0.6,
    }
    return data | changes


def submit(client, model_version, **changes) -> Image | None:
    response = client.post("/generate/", form(model_version, **changes))
    if response.status_code != 302:
        return None
    job = RenderJob.objects.latest("pk")
    render_job_run(job_id=job.pk)
    return Image.objects.get(job=job)


@pytest.mark.parametrize("mode", ["img2img", "inpaint"])
def test_render_and_rerun_bit_identical(
    client, user, model_version, media_root, mode, django_capture_on_commit_callbacks
):
    client.force_login(user)
    extra = {"init_upload": png()}
    if mode == "inpaint":
        extra["mask_upload"] = png("L", box=(16, 16, 48, 48))
    with django_capture_on_commit_callbacks(execute=False):
        image = submit(client, model_version, mode=mode, **extra)
        assert image is not None and image.status == Image.Status.READY, image
        assert image.mode == mode and image.strength == 0.6 and image.init_image is not None
        assert (image.mask is not None) == (mode == "inpaint")
        assert image.environment["mode"] == mode
        assert image.environment["pipeline_class"].startswith("StableDiffusion")
        reproduction = reproduction_create(image=image, requested_by=user)
        reproduction_run(reproduction_id=reproduction.pk)
    reproduction.refresh_from_db()
    assert reproduction.verdict == Reproduction.Verdict.BIT_IDENTICAL


def test_sources_are_stored_once_by_content(
    client, user, model_version, django_capture_on_commit_callbacks
):
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=False):
        first = submit(client, model_version, init_upload=png())
        second = submit(client, model_version, init_upload=png(), seed=4)
    assert first.init_image_id == second.init_image_id
    assert SourceImage.objects.count() == 1


def test_strength_changes_pixels(client, user, model_version, django_capture_on_commit_callbacks):
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=False):
        weak = submit(client, model_version, init_upload=png(), strength=0.3)
        strong = submit(client, model_version, init_upload=png(), strength=0.9)
    assert weak.pixel_sha256 != strong.pixel_sha256


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "img2img needs an init image"),
        ({"mode": "inpaint", "init_upload": "png"}, "Inpainting needs a mask"),
        ({"init_upload": "png", "strength": 1.5}, "Strength must be above 0"),
        ({"init_upload": "bomb"}, "megapixels"),
        ({"init_upload": "text"}, "not a PNG, JPEG or WebP"),
        (
            {"mode": "inpaint", "init_upload": "png", "mask_data": "data:image/gif;base64,AAAA"},
            "must be a PNG data URL",
        ),
    ],
)
def test_bad_inputs_are_refused_clearly(client, user, model_version, changes, message):
    client.force_login(user)
    if changes.get("init_upload") == "png":
        changes["init_upload"] = png()
    elif changes.get("init_upload") == "bomb":
        bomb = io.BytesIO()
        PILImage.new("1", (20000, 20000)).save(bomb, format="PNG")
        bomb.seek(0)
        bomb.name = "bomb.png"
        changes["init_upload"] = bomb
    elif changes.get("init_upload") == "text":
        changes["init_upload"] = io.BytesIO(b"hello")
        changes["init_upload"].name = "x.png"
    response = client.post("/generate/", form(model_version, **changes))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert RenderJob.objects.count() == 0


def test_use_as_init_image_prefills_from_a_record(
    client, user, model_version, django_capture_on_commit_callbacks
):
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=False):
        record = submit(client, model_version, mode="txt2img")
    sources_before = SourceImage.objects.count()
    response = client.get("/generate/", {"init": record.pk})
    initial = response.context["form"].initial
    assert initial["mode"] == "img2img" and initial["prompt"] == record.prompt
    assert initial["init_record"] == record.pk
    assert response.context["init_source"].url == record.image_file.url
    assert "<canvas" in response.content.decode()  # the mask painter
    assert SourceImage.objects.count() == sources_before  # a page view stores nothing

    with django_capture_on_commit_callbacks(execute=False):
        child = submit(client, model_version, mode="img2img", init_record=record.pk)
    assert child.init_image.owner == user  # the record's pixels, now the user's init image


def test_img2img_records_export_with_their_init_image(
    client, user, model_version, django_capture_on_commit_callbacks
):
    import io
    import zipfile

    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=False):
        image = submit(client, model_version, init_upload=png())
    document = client.get(f"/images/{image.pk}/export.json").json()
    wanted = document["inputs"]["init_image"]
    assert wanted["sha256"] == image.init_image.pixel_sha256
    response = client.get(f"/images/{image.pk}/export.zip")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = set(archive.namelist())
        assert f"seedbank-{image.pk}/{wanted['file']}" in names
        assert f"seedbank-{image.pk}/seedbank-{image.pk}.py" in names
        with image.init_image.file.open("rb") as handle:
            assert archive.read(f"seedbank-{image.pk}/{wanted['file']}") == handle.read()
    assert "Export (.zip)" in client.get(f"/images/{image.pk}/").content.decode()
