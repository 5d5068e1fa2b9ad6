"""SDXL through the web: the render API and the form take a refiner by name (stored by weights
digest), the worker renders it, a rerun is bit-identical, the record page and the export name
it; SDXL-only fields on an SD 1.x model and a refiner as the model are refused by field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from engine.recipe import REFINER_SWITCH_SUGGESTED, SDXL, input_fields, input_name, spec
from engine.recipe_diff import recipe_changes
from gallery.forms.recipe import RecipeForm
from generator.models import Image, RenderJob, Reproduction
from generator.services.rendering import render_job_run, reproduction_run
from generator.services.reproductions import reproduction_create
from tests.generator.sdxl_support import TinySdxl, tiny_sdxl_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def sdxl(db: None, media_root: Path) -> TinySdxl:
    return tiny_sdxl_register()


def _post(client, payload: dict[str, Any]):
    return client.post("/api/v1/renders", json.dumps(payload), content_type="application/json")


def test_an_sdxl_render_with_a_refiner_by_name_reruns_bit_identically_and_exports(
    client, user, sdxl: TinySdxl, django_capture_on_commit_callbacks
) -> None:
    client.force_login(user)
    payload = {
        "model_version": sdxl.base.pk,
        "prompt": "a red circle",
        "prompt_2": "a green square",
        "negative_prompt_2": "blurry",
        "original_width": 128,
        "original_height": 128,
        "crop_top": 8,
        "target_width": 64,
        "target_height": 64,
        "refiner": "tiny-sdxl-refiner",
        "refiner_switch_at": 0.75,
        "seed": 5,
        "steps": 4,
    }
    with django_capture_on_commit_callbacks(execute=False):
        response = _post(client, payload)
        assert response.status_code == 202, response.content
        job = RenderJob.objects.get(pk=response.json()["id"])
        render_job_run(job_id=job.pk)
        image = Image.objects.get(job=job)
        reproduction = reproduction_create(image=image, requested_by=None)
        reproduction_run(reproduction_id=reproduction.pk)
    job.refresh_from_db()
    assert job.status == RenderJob.Status.DONE, job.error
    assert image.status == Image.Status.READY
    # The recipe names the refiner by the weights digest of its files, not by its name.
    assert image.refiner == sdxl.refiner.weights_digest
    assert (image.prompt_2, image.refiner_switch_at) == ("a green square", 0.75)
    environment = image.environment
    assert environment["model_family"] == SDXL
    assert environment["refiner"]["digest"] == sdxl.refiner.weights_digest
    reproduction.refresh_from_db()
    assert reproduction.verdict == Reproduction.Verdict.BIT_IDENTICAL
    assert reproduction.pixel_sha256 == image.pixel_sha256

    document = client.get(f"/images/{image.pk}/export.json").json()
    assert document["refiner_model"]["name"] == "tiny-sdxl-refiner@seed0"
    assert document["refiner_model"]["digest"] == sdxl.refiner.weights_digest
    assert document["refiner_switch_at"] == 0.75 and document["prompt_2"] == "a green square"
    # Found by digest: no server path travels with the export (as for the model).
    exported = json.dumps(document)
    assert sdxl.refiner.path not in exported and sdxl.base.path not in exported

    page = client.get(f"/images/{image.pk}/").content.decode()
    assert "a green square" in page
    refiner_row = re.search(r'data-testid="recipe-refiner">(.*?)</dd>', page, re.S)
    assert refiner_row is not None and sdxl.refiner.weights_digest[:12] in refiner_row.group(1)
    assert "128×128" in page  # the original size the model was told


@pytest.mark.parametrize(
    "ref", ["tiny-sdxl-refiner@seed0", "digest", "tiny-sdxl"], ids=["revision", "digest", "base"]
)
def test_the_api_takes_a_refiner_by_name_revision_or_digest(
    ref: str, client, user, sdxl: TinySdxl, django_capture_on_commit_callbacks
) -> None:
    client.force_login(user)
    wanted = sdxl.base if ref == "tiny-sdxl" else sdxl.refiner
    ref = wanted.weights_digest if ref == "digest" else ref
    payload = {"model_version": sdxl.base.pk, "prompt": "a cat", "refiner": ref}
    with django_capture_on_commit_callbacks(execute=False):
        response = _post(client, {**payload, "refiner_switch_at": 0.8})
    assert response.status_code == 202, response.content
    assert Image.objects.get(job_id=response.json()["id"]).refiner == wanted.weights_digest


def test_the_api_refuses_an_unknown_refiner_by_field(client, user, sdxl: TinySdxl) -> None:
    client.force_login(user)
    payload = {"model_version": sdxl.base.pk, "prompt": "a cat", "refiner_switch_at": 0.8}
    response = _post(client, {**payload, "refiner": "no-such-refiner"})
    assert response.status_code == 400
    assert "no-such-refiner" in response.json()["errors"]["refiner"][0]


def test_sdxl_fields_on_an_sd_model_are_refused_naming_the_field(
    client, user, model_version
) -> None:
    client.force_login(user)
    payload = {"model_version": model_version.pk, "prompt": "a cat", "prompt_2": "a dog"}
    response = _post(client, payload)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["prompt_2"]
    assert "is for SDXL models" in errors["prompt_2"][0]
    assert not RenderJob.objects.exists()


def test_a_refiner_as_the_model_is_refused(client, user, sdxl: TinySdxl) -> None:
    client.force_login(user)
    response = _post(client, {"model_version": sdxl.refiner.pk, "prompt": "a cat"})
    assert response.status_code == 400
    assert "only finishes another model's picture" in response.json()["errors"]["model_version"][0]


def test_the_form_offers_refiners_by_digest_and_sdxl_fields_last(
    client, user, sdxl: TinySdxl, model_version
) -> None:
    order = list(RecipeForm.base_fields)
    sdxl_names = [input_name(f) for f in input_fields() if spec(f).family == SDXL]
    assert order[-len(sdxl_names) :] == sdxl_names
    assert order.index("init_upload") < order.index("prompt_2")
    client.force_login(user)
    page = client.get(reverse("generate")).content.decode()
    model_select = re.search(r'<select name="model_version".*?</select>', page, re.S)
    refiner_select = re.search(r'<select name="refiner".*?</select>', page, re.S)
    assert model_select is not None and refiner_select is not None
    # A refiner only finishes another model's picture: it is no choice of model.
    assert f'value="{sdxl.refiner.pk}"' not in model_select.group(0)
    assert f'value="{sdxl.base.pk}"' in model_select.group(0)
    options = re.findall(r'<option value="([^"]*)"', refiner_select.group(0))
    assert options == ["", sdxl.base.weights_digest, sdxl.refiner.weights_digest]
    assert model_version.weights_digest not in refiner_select.group(0)


def test_the_form_renders_with_a_refiner_at_the_usual_switch_point(
    client, user, sdxl: TinySdxl, django_capture_on_commit_callbacks
) -> None:
    client.force_login(user)
    form = {
        "model_version": sdxl.base.pk,
        "prompt": "a red circle",
        "prompt_2": "a green square",
        "refiner": sdxl.refiner.weights_digest,
        "steps": 4,
    }
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("generate"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    image = Image.objects.get()
    assert image.refiner == sdxl.refiner.weights_digest
    assert image.refiner_switch_at == REFINER_SWITCH_SUGGESTED
    assert image.prompt_2 == "a green square"
    # A remix shows the record's refiner chosen.
    initial = RecipeForm.initial_from_image(image)
    remix = RecipeForm(initial=initial, viewer=user)
    assert f'value="{sdxl.refiner.weights_digest}" selected' in str(remix["refiner"])


def test_the_form_names_sdxl_fields_an_sd_model_cannot_read(
    client, user, model_version, sdxl: TinySdxl
) -> None:
    client.force_login(user)
    form = {
        "model_version": model_version.pk,
        "prompt": "a red circle",
        "prompt_2": "a green square",
        "refiner": sdxl.refiner.weights_digest,
    }
    response = client.post(reverse("generate"), form)
    assert response.status_code == 400
    errors = response.context["form"].errors
    # The switch point the form fills in for a chosen refiner is no error of its own.
    assert set(errors) == {"prompt_2", "refiner"}
    assert "is for SDXL models" in errors["refiner"][0]
    assert not RenderJob.objects.exists()


def test_second_prompts_are_compared_word_by_word() -> None:
    (change,) = recipe_changes({"prompt_2": "a red fox"}, {"prompt_2": "a blue fox"})
    assert change.is_text
    assert [(hunk.removed, hunk.added) for hunk in change.hunks] == [("red", "blue")]
