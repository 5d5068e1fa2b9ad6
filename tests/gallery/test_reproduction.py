"""Reproduction checks, eviction and restore, in-process with the real pipeline and database.

The worker path is covered in tests/e2e; here the same services run in the test process so the
environment can be varied (batch, thread count) and the verdicts checked against the pixels.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from django.test import override_settings
from PIL import Image as PILImage

from engine import verdicts
from engine.provenance import png_chunks
from engine.recipe import Recipe
from generator.models import Image, RenderJob, Reproduction
from generator.services.model_versions import model_version_register
from generator.services.records import image_evict
from generator.services.render_jobs import render_job_create
from generator.services.rendering import render_job_run, reproduction_run
from generator.services.reproductions import image_restore_request, reproduction_create

pytestmark = pytest.mark.django_db


def rendered(owner, model_version, **changes) -> list[Image]:
    fields = {"model_version_id": model_version.pk, "prompt": "a koi pond", "seed": 21, "steps": 6}
    fields.update(changes)
    job = render_job_create(owner=owner, recipe=Recipe(**fields))
    render_job_run(job_id=job.pk)
    return list(Image.objects.filter(job=job).order_by("batch_index"))


def check(image: Image, **options) -> Reproduction:
    reproduction = reproduction_create(image=image, requested_by=None, **options)
    reproduction_run(reproduction_id=reproduction.pk)
    reproduction.refresh_from_db()
    return reproduction


def decoded(file) -> np.ndarray:
    with file.open("rb") as handle, PILImage.open(handle) as image:
        return np.asarray(image.convert("RGB"))


def assert_verdict_matches_pixels(image: Image, reproduction: Reproduction) -> None:
    """The stored verdict is what the pixels say, whichever way the render went."""
    max_abs, _ = verdicts.pixel_difference(
        decoded(image.image_file), decoded(reproduction.image_file)
    )
    assert reproduction.max_abs_diff == max_abs
    assert reproduction.verdict == verdicts.verdict(
        original_sha256=image.pixel_sha256,
        candidate_sha256=reproduction.pixel_sha256,
        max_abs_diff=max_abs,
    )


def test_rerun_of_a_record_is_bit_identical(
    user, model_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        (image,) = rendered(user, model_version)
        reproduction = check(image)
    assert reproduction.verdict == Reproduction.Verdict.BIT_IDENTICAL
    assert reproduction.pixel_sha256 == image.pixel_sha256
    assert reproduction.max_abs_diff == 0 and reproduction.psnr is None  # infinite
    assert reproduction.environment_diff == {}
    assert reproduction.job.status == RenderJob.Status.DONE


def test_batch_record_reproduces_with_its_batch_and_alone_names_the_batch(
    user, model_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        images = rendered(user, model_version, batch_size=4, seed=100)
        third = images[2]
        assert third.seed == 102 and third.batch_seeds == [100, 101, 102, 103]
        with_batch = check(third)
        alone = check(third, whole_batch=False)

    assert with_batch.verdict == Reproduction.Verdict.BIT_IDENTICAL
    assert with_batch.environment_diff == {}
    assert alone.environment_diff["batch_size"] == [4, 1]
    assert alone.environment_diff["batch_index"] == [2, 0]
    assert alone.environment["seed"] == 102
    assert_verdict_matches_pixels(third, alone)


def test_thread_count_change_is_named_as_the_cause(
    user, model_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        with override_settings(SEEDBANK_TORCH_THREADS=2):
            (image,) = rendered(user, model_version, seed=77)
        assert image.environment["torch_threads"] == 2
        with override_settings(SEEDBANK_TORCH_THREADS=1):
            reproduction = check(image)
    assert reproduction.environment_diff["torch_threads"] == [2, 1]
    assert reproduction.environment_diff["determinism.torch_threads"] == [2, 1]
    assert_verdict_matches_pixels(image, reproduction)


def test_evict_then_restore_serves_identical_bytes(
    user, model_version, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        (image,) = rendered(user, model_version)
        original_path = media_root / image.image_file.name
        original_bytes = original_path.read_bytes()
        with pytest.raises(ValueError, match="no bit-identical reproduction"):
            image_evict(image=image)
        check(image)

        saved = image_evict(image=image)
        image.refresh_from_db()
        assert saved > 0 and image.evicted_at is not None
        assert not image.image_file and not original_path.exists()
        assert image.thumbnail and image.display_url.endswith(".webp")

        restore = image_restore_request(image=image, requested_by=None)
        assert restore is not None
        assert image_restore_request(image=image, requested_by=None) == restore  # reused
        reproduction_run(reproduction_id=restore.pk)

    image.refresh_from_db()
    restore.refresh_from_db()
    assert restore.verdict == Reproduction.Verdict.BIT_IDENTICAL
    assert image.evicted_at is None
    restored_bytes = (media_root / image.image_file.name).read_bytes()
    # The same bytes but for the Content Credentials, signed afresh (and now stating the
    # verdict): one manifest chunk apart.
    assert png_chunks.unsigned(restored_bytes) == png_chunks.unsigned(original_bytes)
    assert restored_bytes != original_bytes
    pixels = decoded(image.image_file)
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == image.pixel_sha256


def test_changed_model_files_fail_the_render_with_the_expected_digest(
    user, tiny_sd_path, tmp_path, media_root, django_capture_on_commit_callbacks
):
    copy = tmp_path / "tiny-sd-copy"
    shutil.copytree(tiny_sd_path, copy)
    model_version = model_version_register(name="copy", path=copy)
    with django_capture_on_commit_callbacks(execute=False):
        (image,) = rendered(user, model_version)
        assert image.status == Image.Status.READY
        config = copy / "scheduler" / "scheduler_config.json"
        config.write_text(config.read_text().replace("0.012", "0.013"))
        reproduction = check(image)
    assert reproduction.verdict == Reproduction.Verdict.FAILED
    assert model_version.weights_digest in reproduction.job.error
    assert "have changed" in reproduction.job.error


def test_exported_script_of_a_record_prints_its_sha256(
    client, user, model_version, tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        images = rendered(user, model_version, batch_size=2, seed=300, scheduler="DDIM")
    record = images[1]
    document = client.get(f"/images/{record.pk}/export.json").json()
    assert document["seeds"] == [300, 301] and document["batch_index"] == 1
    assert document["expected_pixel_sha256"] == record.pixel_sha256

    response = client.get(f"/images/{record.pk}/export.py")
    assert response["Content-Disposition"].endswith(f'seedbank-{record.pk}.py"')
    script = tmp_path / "reproduce.py"
    script.write_bytes(response.content)
    # A fresh interpreter, outside the repository, with no Seedbank on the path.
    # No server path travels with the export: the script is pointed at a local model copy.
    assert model_version.path not in response.content.decode()
    assert model_version.path not in client.get(f"/images/{record.pk}/").content.decode()
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--out",
            str(tmp_path / "out.png"),
            "--model",
            model_version.path,
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"sha256 {record.pixel_sha256}" in result.stdout
