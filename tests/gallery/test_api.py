"""The JSON API on django-ninja: the OpenAPI document is generated, documents every field the
render endpoint accepts (the recipe type's), and what it documents is what the endpoint takes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PIL import Image as PILImage

from engine.recipe import SDXL, input_fields, input_name, spec
from generator.models import Image, RenderJob, SourceImage
from generator.services.records import source_image_store

pytestmark = pytest.mark.django_db


def _schema(client) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def _recipe_schema(schema: dict[str, Any]) -> dict[str, Any]:
    body = schema["paths"]["/api/v1/renders"]["post"]["requestBody"]
    reference = body["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][reference.rsplit("/", 1)[-1]]


def test_every_endpoint_is_documented(client) -> None:
    paths = _schema(client)["paths"]
    assert {"/api/v1/search", "/api/v1/images", "/api/v1/renders", "/api/v1/jobs/{job_id}"} <= set(
        paths
    )
    assert {"202", "400", "401", "429"} <= set(paths["/api/v1/renders"]["post"]["responses"])


def test_the_render_schema_is_the_recipe_type(client, settings) -> None:
    recipe = _recipe_schema(_schema(client))
    assert set(recipe["properties"]) == {input_name(f) for f in input_fields()}
    assert recipe["required"] == ["prompt"]
    assert recipe["properties"]["steps"]["default"] == 20
    assert recipe["properties"]["precision"]["enum"] == settings.SEEDBANK_PRECISIONS
    assert "DPM++ 2M Karras" in recipe["properties"]["scheduler"]["enum"]
    assert recipe["properties"]["mode"]["enum"] == ["txt2img", "img2img", "inpaint"]


_SKIP = object()  # tested on its own: it does not combine with the rest


def _value(name: str, prop: dict[str, Any], sources: dict[str, int], model_id: int) -> Any:
    """A valid value for each documented property, other than its default where one exists."""
    chosen = {
        "loras": [{"resource": "tiny-lora", "weight": 0.8}],
        "vae": "tiny-vae",
        "clip_skip": 2,
        "prompt_weighting": "seedbank-a1111-emphasis@1",
        "hires": _SKIP,  # text to image only; test_hires_fix_is_a_recipe_field
        "model_version": model_id,
        "prompt": "a small red circle on a blue background",
        "negative_prompt": "blurry",
        "seed": 424242,
        "scheduler": "DDIM",
        "steps": 3,
        "guidance": 5.5,
        "width": 72,
        "height": 80,
        "precision": "fp32",
        "batch_size": 2,
        "mode": "inpaint",
        "strength": 0.5,
        "init_image_id": sources["init"],
        "mask_id": sources["mask"],
    }
    assert name in chosen, f"documented field {name!r} has no test value: add one"
    value = chosen[name]
    if value is _SKIP:
        return value
    if len(prop.get("enum", [])) != 1:  # fp32 may be the only precision this deployment has
        assert value != prop.get("default", object()), name
    return value


def test_posting_every_documented_field_renders_exactly_that_recipe(
    client, user, model_version, media_root, lora_resource, vae_resource
) -> None:
    init = source_image_store(picture=PILImage.new("RGB", (64, 64), "red"), kind="init", owner=user)
    mask = source_image_store(
        picture=PILImage.new("L", (64, 64), 255), kind=SourceImage.Kind.MASK, owner=user
    )
    properties = _recipe_schema(_schema(client))["properties"]
    sources = {"init": init.pk, "mask": mask.pk}
    # SDXL's fields are refused on this SD 1.x model: tests/gallery/test_sdxl_renders.py.
    sdxl = {input_name(f) for f in input_fields() if spec(f).family == SDXL}
    payload = {
        name: _value(name, prop, sources, model_version.pk)
        for name, prop in properties.items()
        if name not in sdxl
    }
    payload = {name: value for name, value in payload.items() if value is not _SKIP}
    client.force_login(user)
    response = client.post("/api/v1/renders", json.dumps(payload), content_type="application/json")
    assert response.status_code == 202, response.content
    job = RenderJob.objects.get(pk=response.json()["id"])
    images = list(Image.objects.filter(job=job).order_by("batch_index"))
    assert [image.seed for image in images] == [424242, 424243]
    # Resources are stored by the sha256 of their files, named for people.
    stored = {
        "loras": [{"resource": lora_resource.sha256, "weight": 0.8, "name": "tiny-lora@main"}],
        "vae": {"resource": vae_resource.sha256, "name": "tiny-vae@main"},
    }
    for recipe_field in input_fields():
        if recipe_field.name in {"seed", "batch_size", "hires"} or spec(recipe_field).family:
            continue  # per image: seed + index, checked above; hires and SDXL on their own
        expected = stored.get(recipe_field.name, payload.get(input_name(recipe_field)))
        assert getattr(images[0], recipe_field.name) == expected, recipe_field.name


def test_hires_fix_is_a_recipe_field(client, user, model_version) -> None:
    client.force_login(user)
    hires = {"scale": 1.5, "upscaler": "Lanczos", "steps": 4, "denoise": 0.6}
    payload = {"prompt": "a cat", "hires": hires}
    response = client.post("/api/v1/renders", json.dumps(payload), content_type="application/json")
    assert response.status_code == 202, response.content
    assert Image.objects.get(job_id=response.json()["id"]).hires == hires
    inpaint_hires = {**payload, "mode": "inpaint", "strength": 0.5}
    response = client.post(
        "/api/v1/renders", json.dumps(inpaint_hires), content_type="application/json"
    )
    assert response.status_code == 400
    assert "hires" in response.json()["errors"]


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"prompt": "x", "lora": [{"resource": "a", "weight": 1}]}, "lora", "no such field"),
        ({"prompt": "x", "clipskip": 2}, "clipskip", "no such field"),
        ({"prompt": "x", "loras": [{"resource": "a", "strength": 1}]}, "loras", "no such field"),
        ({"prompt": "x", "hires": {"scale": 2, "denoising": 0.5}}, "hires", "no such field"),
        ({"prompt": "x", "loras": [{"resource": "nobody", "weight": 1}]}, "loras", "Unknown LoRA"),
        ({"prompt": "x", "vae": "nobody"}, "vae", "Unknown VAE"),
        ({"prompt": "x", "clip_skip": 0}, "clip_skip", "between 1 and"),
        ({"prompt": "x", "hires": {"scale": 9}}, "hires", "at most 4"),
        ({"prompt": "x", "hires": {"scale": 2, "upscaler": "ESRGAN_4x"}}, "hires", "upscaler"),
    ],
)
def test_unknown_fields_and_resources_are_refused_by_name(
    client, user, model_version, payload, field, words
) -> None:
    """A field the API does not know is never dropped: a LoRA ignored would give another
    picture with no word said."""
    client.force_login(user)
    response = client.post("/api/v1/renders", json.dumps(payload), content_type="application/json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors, errors
    assert any(words in message for message in errors[field]), errors
    assert RenderJob.objects.count() == 0


def test_absent_fields_take_the_recipe_defaults(client, user, model_version) -> None:
    client.force_login(user)
    response = client.post(
        "/api/v1/renders", json.dumps({"prompt": "a cat"}), content_type="application/json"
    )
    assert response.status_code == 202, response.content
    image = Image.objects.get(job_id=response.json()["id"])
    assert (image.model_version_id, image.scheduler, image.steps) == (model_version.pk, "PNDM", 20)


def test_wrong_types_answer_400_by_field(client, user, model_version) -> None:
    client.force_login(user)
    payload = {"prompt": "x", "steps": "many", "guidance": "lots", "seed": 1.5}
    response = client.post("/api/v1/renders", json.dumps(payload), content_type="application/json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["steps"] == ["Enter a whole number."]
    assert errors["guidance"] == ["Enter a number."]
    assert errors["seed"] == ["Enter a whole number."]
    assert RenderJob.objects.count() == 0


def test_images_api_rejects_bad_parameters_by_name(client, db) -> None:
    response = client.get("/api/v1/images", {"q": "cat", "limit": 0})
    assert response.status_code == 400
    assert "limit" in response.json()["errors"]
