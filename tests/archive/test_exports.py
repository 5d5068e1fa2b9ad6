"""Exports (archive.services.exports) and their round trip back through the importer."""

from __future__ import annotations

import io
import zipfile

import pytest

from archive.models import SourceRecord
from archive.services.exports import RECIPES_FILE, export_parquet, export_zip
from engine.infotext import read_png_chunks, recipe_from_json
from engine.recipe import Recipe
from generator.models import Image
from generator.services.render_jobs import render_job_create
from generator.services.rendering import render_job_run
from tests.archive.test_imports import run_import

pytestmark = pytest.mark.django_db


def rendered(model_version, django_capture_on_commit_callbacks, **changes) -> list[Image]:
    fields = {"model_version_id": model_version.pk, "prompt": "a paper boat", "seed": 21,
              "steps": 4, "scheduler": "DPM++ 2M", "batch_size": 2, **changes}  # fmt: skip
    job = render_job_create(owner=None, recipe=Recipe(**fields))
    with django_capture_on_commit_callbacks(execute=True):
        render_job_run(job_id=job.pk)
    return list(job.images.order_by("batch_index"))


def portable(images) -> list[dict]:
    return sorted((image.recipe_portable() for image in images), key=lambda r: r["seed"])


def test_zip_round_trip_gives_the_same_recipes(
    tmp_path,
    model_version,
    media_root,
    sent,
    django_capture_on_commit_callbacks,
):
    images = rendered(model_version, django_capture_on_commit_callbacks)
    images += rendered(model_version, django_capture_on_commit_callbacks,
                       prompt="两只纸船, \"quoted\"", negative_prompt="fog\nrain", seed=5,
                       scheduler="Euler a", batch_size=1)  # fmt: skip
    before = portable(images)
    path = tmp_path / "export.zip"
    with path.open("wb") as handle:
        assert export_zip(images, handle) == 3
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        # Sorted as text on both sides: "images/10.png" comes before "images/9.png".
        assert names == sorted([*(f"images/{i.pk}.png" for i in images), RECIPES_FILE])
        chunks = read_png_chunks(archive.read(f"images/{images[0].pk}.png"))
        assert recipe_from_json(chunks["seedbank"])["seed"] == images[0].seed

    Image.objects.all().delete()  # into an archive that does not have them
    with django_capture_on_commit_callbacks(execute=True):
        run = run_import([path])
    # three pictures, and their three recipes.jsonl rows are the same sources
    assert (run.read, run.imported, run.duplicates, run.rejected) == (6, 3, 3, 0)
    assert portable(Image.objects.all()) == before
    assert set(SourceRecord.objects.values_list("tool", flat=True)) == {"seedbank"}

    again = run_import([path])
    assert (again.imported, again.duplicates) == (0, 6)


def test_exported_pictures_already_here_are_duplicates(
    tmp_path,
    model_version,
    media_root,
    sent,
    django_capture_on_commit_callbacks,
):
    images = rendered(model_version, django_capture_on_commit_callbacks)
    buffer = io.BytesIO()
    export_zip(images, buffer)
    (tmp_path / "e.zip").write_bytes(buffer.getvalue())
    run = run_import([tmp_path / "e.zip"])
    assert (run.imported, run.duplicates) == (0, 4)
    assert Image.objects.count() == 2


def test_parquet_round_trip_renders_the_same_recipes(
    tmp_path,
    model_version,
    media_root,
    sent,
    django_capture_on_commit_callbacks,
):
    images = rendered(model_version, django_capture_on_commit_callbacks, scheduler="UniPC")
    before = portable(images)
    with (tmp_path / "metadata.parquet").open("wb") as handle:
        assert export_parquet(images, handle) == 2
    Image.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        run = run_import([tmp_path / "metadata.parquet"])
    # No pictures in a parquet: the model is here (by digest), so each recipe is rendered.
    assert (run.queued, run.rejected) == (2, 0)
    after = portable(Image.objects.all())
    for row in (*before, *after):
        row.pop("batch_size"), row.pop("batch_index")  # rendered one by one now
    assert after == before
