"""The issue's "done when", as a user would do it: a record of the shipped scene model that uses
the shipped LoRA at 0.8, the shipped embedding, the earlier VAE, clip skip 2, an A1111-weighted
prompt and a hires pass; its exported script, run from a Seedbank checkout with no argument in a
process that cannot import Seedbank, re-renders it bit for bit."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from engine.recipe import A1111_WEIGHTING, Hires, LoraUse, Recipe, ResourceUse
from generator.models import ModelVersion, Resource
from generator.services.render_jobs import render_job_create
from generator.services.rendering import render_job_run

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_a_record_with_every_shipped_resource_reproduces_from_its_script_alone(
    settings, tmp_path: Path, media_root: Path, django_capture_on_commit_callbacks
) -> None:
    settings.SEEDBANK_MODELS_DIR = tmp_path / "models"  # where demo_models writes the blend
    call_command("demo_models", stdout=io.StringIO())
    model = ModelVersion.objects.get(is_default=True)
    lora = Resource.objects.get(name="scenes-outline-lora")
    vae = Resource.objects.get(name="scenes-vae-v1")
    recipe = Recipe(
        model_version_id=model.pk,
        prompt="a large (red:1.3) sbk-diamond in the middle of a blue background",
        seed=4242,
        steps=12,
        guidance=2.0,
        scheduler="DPM++ 2M",
        loras=(LoraUse(resource=lora.sha256, weight=0.8, name=str(lora)),),
        vae=ResourceUse(resource=vae.sha256, name=str(vae)),
        clip_skip=2,
        prompt_weighting=A1111_WEIGHTING,
        hires=Hires(scale=1.5, upscaler="Latent", steps=6, denoise=0.5),
    )
    job = render_job_create(owner=None, recipe=recipe)
    with django_capture_on_commit_callbacks(execute=True):
        render_job_run(job_id=job.pk)
    record = job.images.get()
    assert record.status == record.Status.READY, job.error
    assert [use["token"] for use in record.embeddings] == ["sbk-diamond"]

    document = Client().get(f"/images/{record.pk}/export.json").json()
    assert document["model"]["path"] == "models/seedbank-scenes-sd"
    assert {r["name"] for r in document["resources"]} == {
        "scenes-outline-lora@v2", "scenes-vae-v1@v2", "sbk-diamond@v2"
    }  # fmt: skip
    assert document["loras"] == [{"resource": lora.sha256, "weight": 0.8, "name": str(lora)}]
    script = tmp_path / "script.py"
    script.write_bytes(Client().get(f"/images/{record.pk}/export.py").content)
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path / "again.png")],
        cwd=REPO_ROOT,  # a Seedbank checkout: the shipped files are under ./models
        env={**os.environ, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert f"sha256 {record.pixel_sha256}" in done.stdout
