"""render_job_run in-process with the real tiny pipeline and the real database (no worker)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from celery import current_app
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image as PILImage

from engine import pipeline, schedulers
from engine.infotext import parse_infotext, read_png_chunks, recipe_from_json
from engine.recipe import Recipe
from engine.schedulers import SCHEDULERS
from generator.models import Image, RenderJob
from generator.services import rendering
from generator.services.render_jobs import render_job_create
from generator.services.rendering import render_job_run
from search.models import PendingEmbedding

pytestmark = pytest.mark.django_db


def create_job(owner, model_version, **changes):
    fields = {"model_version_id": model_version.pk, "prompt": "a koi pond", "seed": 11, "steps": 6}
    fields.update(changes)
    return render_job_create(owner=owner, recipe=Recipe(**fields))


def test_render_stores_png_sha_environment_and_queues_embedding(
    user, model_version, django_capture_on_commit_callbacks, media_root, monkeypatch
):
    job = create_job(user, model_version, batch_size=2)
    sent: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, args=None, **options: sent.append((name, args))
    )
    with django_capture_on_commit_callbacks(execute=True):
        render_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == RenderJob.Status.DONE
    assert job.progress_step == job.progress_total == 6
    assert job.render_seconds and job.render_seconds > 0
    images = list(job.images.order_by("batch_index"))
    assert [i.seed for i in images] == [11, 12]
    for index, image in enumerate(images):
        assert image.status == Image.Status.READY
        with PILImage.open(media_root / image.image_file.name) as decoded:
            pixels = np.asarray(decoded.convert("RGB"))
        assert hashlib.sha256(pixels.tobytes()).hexdigest() == image.pixel_sha256
        # The grid's WebP preview is written with the pixels (64 px: one width, no larger one).
        with PILImage.open(media_root / image.thumbnail.name) as preview:
            assert preview.format == "WEBP" and preview.size == (image.width, image.height)
        assert not image.thumbnail_large
        env = image.environment
        assert env["seed"] == image.seed and env["batch_index"] == index
        assert env["batch_size"] == 2
        assert env["scheduler"] == "PNDM"
        assert env["scheduler_config"]["_class_name"] == "PNDMScheduler"
        assert env["torch_threads"] >= 1
    assert images[0].pixel_sha256 != images[1].pixel_sha256
    # Search hears of the ready records (a signal): they join the embedding backlog, and one
    # drain task is sent for the whole batch.
    assert sent == [("search.tasks.embed_pending", None)]
    assert set(PendingEmbedding.objects.values_list("image_id", flat=True)) == {
        image.pk for image in images
    }


def test_running_a_finished_job_again_changes_nothing(
    user, model_version, django_capture_on_commit_callbacks
):
    job = create_job(user, model_version)
    with django_capture_on_commit_callbacks(execute=False):
        render_job_run(job_id=job.pk)
    image = Image.objects.get(job=job)
    before = (image.image_file.name, image.pixel_sha256, image.finished_at)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        render_job_run(job_id=job.pk)  # a redelivered task
    image.refresh_from_db()
    assert (image.image_file.name, image.pixel_sha256, image.finished_at) == before
    assert callbacks == []


def test_a_failing_render_marks_job_and_images_failed(
    user, model_version, django_capture_on_commit_callbacks
):
    job = create_job(user, model_version)
    model_version.path = "/nonexistent/model"
    model_version.save(update_fields=["path"])
    render_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == RenderJob.Status.FAILED
    assert job.error
    assert Image.objects.get(job=job).status == Image.Status.FAILED


def test_stored_png_carries_a1111_parameters_and_the_exact_recipe(
    user, model_version, django_capture_on_commit_callbacks, media_root
):
    job = create_job(user, model_version, prompt="a fox, at dusk: 狐狸", negative_prompt="blur")
    with django_capture_on_commit_callbacks(execute=False):
        render_job_run(job_id=job.pk)
    image = Image.objects.get(job=job)
    chunks = read_png_chunks((media_root / image.image_file.name).read_bytes())

    parsed = parse_infotext(chunks["parameters"])
    assert (parsed.prompt, parsed.negative_prompt) == ("a fox, at dusk: 狐狸", "blur")
    assert (parsed.seed, parsed.steps, parsed.scheduler) == (11, 6, "PNDM")
    assert (parsed.width, parsed.height, parsed.guidance) == (64, 64, 7.5)
    assert parsed.model_name == "tiny-sd@seed0"
    assert image.model_digest.startswith(parsed.model_hash)

    recipe = recipe_from_json(chunks["seedbank"])
    assert recipe["seed"] == 11 and recipe["model_digest"] == image.model_digest
    assert recipe["prompt"] == image.prompt and recipe["batch_index"] == 0


def test_out_of_memory_halves_the_batch_and_records_the_split(
    user, model_version, django_capture_on_commit_callbacks, monkeypatch
):
    """A GPU that fits 2 images at a time: the batch of 8 finishes as 4 batches of 2."""
    import torch

    from engine import pipeline

    real_render = pipeline.render
    attempts: list[int] = []

    def render_on_a_small_gpu(request, **kwargs):
        attempts.append(len(request.seeds))
        if len(request.seeds) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected by the test)")
        return real_render(request, **kwargs)

    monkeypatch.setattr(pipeline, "render", render_on_a_small_gpu)
    job = create_job(user, model_version, batch_size=8, seed=500)
    with django_capture_on_commit_callbacks(execute=False):
        render_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == RenderJob.Status.DONE
    assert attempts == [8, 4, 2, 2, 2, 2]
    images = list(job.images.order_by("seed"))
    assert [image.seed for image in images] == list(range(500, 508))
    assert all(image.status == Image.Status.READY and image.image_file for image in images)
    for position, image in enumerate(images):
        env = image.environment
        assert (image.batch_size, image.batch_index) == (2, position % 2)
        assert env["batch_seeds"] == image.batch_seeds
        assert env["requested_batch_size"] == 8
        assert env["oom_splits"] == [
            {"failed_batch_size": 8, "at_image": 0},
            {"failed_batch_size": 4, "at_image": 0},
        ]
        with image.image_file.open("rb") as handle:
            written = recipe_from_json(read_png_chunks(handle.read())["seedbank"])
        assert (written["batch_size"], written["batch_index"]) == (2, position % 2)


def test_out_of_memory_on_a_single_image_fails_the_job_clearly(user, model_version, monkeypatch):
    import torch

    from engine import pipeline

    def no_memory_at_all(request, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected by the test)")

    monkeypatch.setattr(pipeline, "render", no_memory_at_all)
    job = create_job(user, model_version, batch_size=2)
    render_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == RenderJob.Status.FAILED and "out of memory" in job.error


def test_fp16_on_a_cpu_worker_fails_clearly_never_silently(user, model_version, settings):
    """A GPU deployment may offer fp16; a CPU worker that gets such a job refuses it."""
    settings.SEEDBANK_PRECISIONS = ["fp32", "fp16"]
    job = create_job(user, model_version, precision="fp16")
    render_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == RenderJob.Status.FAILED
    assert "fp16 needs a CUDA device" in job.error
    assert Image.objects.get(job=job).status == Image.Status.FAILED


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_every_scheduler_renders_and_is_stored(
    user, model_version, scheduler, django_capture_on_commit_callbacks
):
    """DPM++ 2M's config holds -inf, which JSON cannot: it is recorded and rebuilt as a string."""
    job = create_job(user, model_version, scheduler=scheduler, steps=4)
    with django_capture_on_commit_callbacks(execute=False):
        render_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == RenderJob.Status.DONE, job.error
    config = Image.objects.get(job=job).environment["scheduler_config"]
    rebuilt = schedulers.build_scheduler(scheduler, schedulers.config_from_record(config))
    assert schedulers.scheduler_config(rebuilt) == config


def test_a_failure_after_the_render_fails_the_job_and_leaves_no_files(
    user, model_version, media_root, monkeypatch, django_capture_on_commit_callbacks
):
    job = create_job(user, model_version)
    real_store = rendering.image_store_pixels

    def store_then_break(**kwargs):
        real_store(**kwargs)
        raise ValueError("the disk said no")

    monkeypatch.setattr(rendering, "image_store_pixels", store_then_break)

    def stored_files():
        return {
            path for folder in ("images", "thumbnails") for path in media_root.glob(f"{folder}/*")
        }

    before = stored_files()
    with django_capture_on_commit_callbacks(execute=False):
        render_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == RenderJob.Status.FAILED
    assert "Storing the result failed: ValueError: the disk said no" in job.error
    assert Image.objects.get(job=job).status == Image.Status.FAILED
    assert stored_files() == before  # neither the PNG nor its preview is left behind


def test_progress_is_written_a_few_times_a_second_not_every_step(
    user, model_version, django_capture_on_commit_callbacks
):
    job = create_job(user, model_version, steps=30)
    with CaptureQueriesContext(connection) as captured, django_capture_on_commit_callbacks():
        render_job_run(job_id=job.pk)
    progress = [q for q in captured.captured_queries if '"progress_step" =' in q["sql"]
                and q["sql"].startswith("UPDATE")]  # fmt: skip
    job.refresh_from_db()
    assert job.progress_step == job.progress_total == 30
    assert 1 <= len(progress) < 15, len(progress)  # a 30-step render wrote far fewer than 30


def test_a_worker_loads_the_default_model_before_its_first_job(model_version) -> None:
    pipeline._load.cache_clear()
    rendering.warm_default_model()
    assert pipeline._load.cache_info().currsize == 1  # the default model, loaded


def test_a_hires_record_says_the_size_of_its_picture() -> None:
    from generator.models import Image

    plain = Image(width=64, height=48)
    hires = Image(
        width=64,
        height=48,
        prompt="x",
        hires={"scale": 1.5, "upscaler": "Latent", "steps": 0, "denoise": 0.5},
    )
    assert (plain.output_width, plain.output_height) == (64, 48)
    assert (hires.output_width, hires.output_height) == (96, 72)
