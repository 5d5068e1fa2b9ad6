"""Every stored picture is signed (real tiny pipeline, real database): what a download carries,
checked by c2pa-python in a separate process; the verdict re-signs; only the manifest varies."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.provenance import png_chunks
from engine.provenance.xmp import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    digital_source_type,
)
from engine.recipe import Recipe
from generator.models import Image, Reproduction
from generator.services.render_jobs import render_job_create
from generator.services.rendering import render_job_run, reproduction_run
from generator.services.reproductions import reproduction_create
from generator.services.signing import site_credential
from tests.generator.test_img2img import png as upload_png
from tests.generator.test_img2img import submit

pytestmark = pytest.mark.django_db

# What someone who downloaded the picture runs: c2pa-python alone, trusting the site's CA.
READ_IN_ANOTHER_PROCESS = """
import io, json, sys, c2pa
data = open(sys.argv[1], "rb").read()
settings = {"trust": {"trust_anchors": open(sys.argv[2]).read()}}
reader = c2pa.Reader("image/png", io.BytesIO(data), context=c2pa.Context.from_dict(settings))
print(json.dumps({"state": reader.get_validation_state(), "store": json.loads(reader.json())}))
"""


def render(user, model_version, **changes) -> Image:
    fields = {"model_version_id": model_version.pk, "prompt": "a red circle", "seed": 5, "steps": 4}
    job = render_job_create(owner=user, recipe=Recipe(**(fields | changes)))
    render_job_run(job_id=job.pk)
    return Image.objects.get(job=job)


def downloaded(client, image: Image, tmp_path) -> bytes:
    response = client.get(image.image_file.url)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def read_elsewhere(data: bytes, tmp_path) -> tuple[str, dict]:
    picture, anchor = tmp_path / "download.png", tmp_path / "anchor.pem"
    picture.write_bytes(data)
    anchor.write_text(site_credential().anchor_pem)
    done = subprocess.run(
        [sys.executable, "-c", READ_IN_ANOTHER_PROCESS, str(picture), str(anchor)],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(done.stdout)
    store = found["store"]
    return found["state"], store["manifests"][store["active_manifest"]]


def assertion(manifest: dict, label: str) -> dict:
    (data,) = [a["data"] for a in manifest["assertions"] if a["label"] == label]
    return data


def test_a_downloaded_record_validates_with_its_recipe_and_source_type(
    client, user, model_version, tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        image = render(user, model_version)
    data = downloaded(client, image, tmp_path)
    state, manifest = read_elsewhere(data, tmp_path)
    assert state == "Trusted"
    assert manifest["signature_info"]["cert_serial_number"] == site_credential().serial_number
    (action,) = assertion(manifest, "c2pa.actions.v2")["actions"]
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert action["parameters"]["org.seedbank.model"]["digest"] == image.model_digest
    claimed = assertion(manifest, "org.seedbank.recipe")
    assert claimed["record"] == image.pk and claimed["pixel_sha256"] == image.pixel_sha256
    assert claimed["reproduction"] is None
    # The recipe is the record's export, field for field.
    export = client.get(f"/images/{image.pk}/export.json").json()
    recipe = claimed["recipe"]
    assert recipe["model_digest"] == export["model"]["digest"]
    for name, value in recipe.items():
        if name not in ("model", "model_digest"):
            assert export[name] == value, name
    assert digital_source_type(png_chunks.xmp_text(data) or "") == TRAINED_ALGORITHMIC_MEDIA


def test_img2img_is_a_composite_with_its_inputs_as_ingredients(
    client, user, model_version, tmp_path, django_capture_on_commit_callbacks
):
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=False):
        image = submit(
            client,
            model_version,
            mode="inpaint",
            init_upload=upload_png(),
            mask_upload=upload_png("L", box=(16, 16, 48, 48)),
        )
    state, manifest = read_elsewhere(downloaded(client, image, tmp_path), tmp_path)
    assert state == "Trusted"
    (action,) = assertion(manifest, "c2pa.actions.v2")["actions"]
    assert action["digitalSourceType"] == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert [i["relationship"] for i in manifest["ingredients"]] == ["inputTo", "inputTo"]
    assert [i["title"].split("-")[0] for i in manifest["ingredients"]] == ["init", "mask"]


def test_a_verdict_re_signs_the_picture_and_moves_no_pixel(
    client, user, model_version, tmp_path, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        image = render(user, model_version)
    before_name = image.image_file.name
    before = (media_root / before_name).read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        reproduction = reproduction_create(image=image, requested_by=user)
        reproduction_run(reproduction_id=reproduction.pk)
    image.refresh_from_db()
    reproduction.refresh_from_db()
    assert reproduction.verdict == Reproduction.Verdict.BIT_IDENTICAL
    after = (media_root / image.image_file.name).read_bytes()
    assert image.image_file.name != before_name and not (media_root / before_name).exists()
    assert png_chunks.unsigned(after) == png_chunks.unsigned(before)
    state, manifest = read_elsewhere(after, tmp_path)
    assert state == "Trusted"
    verdict = assertion(manifest, "org.seedbank.recipe")["reproduction"]
    assert verdict["verdict"] == Reproduction.Verdict.BIT_IDENTICAL


def test_the_same_recipe_gives_the_same_bytes_outside_the_manifest(
    user, model_version, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        first, second = (render(user, model_version, seed=9) for _ in range(2))
    files = [(media_root / image.image_file.name).read_bytes() for image in (first, second)]
    assert files[0] != files[1]  # two manifests: each has its own id and signature
    assert png_chunks.unsigned(files[0]) == png_chunks.unsigned(files[1])
