"""The JSON API on django-ninja: the OpenAPI document is generated, documents every field the
render endpoint accepts (the recipe type's), and what it documents is what the endpoint takes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PIL import Image as PILImage

from engine.recipe import input_name, recipe_fields
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
    assert set(recipe["properties"]) == {input_name(f) for f in recipe_fields()}
    assert recipe["required"] == ["prompt"]
    assert recipe["properties"]["steps"]["default"] == 20
    assert recipe["properties"]["precision"]["enum"] == settings.SEEDBANK_PRECISIONS
    assert "DPM++ 2M Karras" in recipe["properties"]["scheduler"]["enum"]
    assert recipe["properties"]["mode"]["enum"] == ["txt2img", "img2img", "inpaint"]


def _value(name: str, prop: dict[str, Any], sources: dict[str, int], model_id: int) -> Any:
    """A valid value for each documented property, other than its default where one exists."""
    chosen = {
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
    if len(prop.get("enum", [])) != 1:  # fp32 may be the only precision this deployment has
        assert value != prop.get("default", object()), name
    return value


def test_posting_every_documented_field_renders_exactly_that_recipe(
    client, user, model_version, media_root
) -> None:
    init = source_image_store(picture=PILImage.new("RGB", (64, 64), "red"), kind="init", owner=user)
    mask = source_image_store(
        picture=PILImage.new("L", (64, 64), 255), kind=SourceImage.Kind.MASK, owner=user
    )
    properties = _recipe_schema(_schema(client))["properties"]
    sources = {"init": init.pk, "mask": mask.pk}
    payload = {
        name: _value(name, prop, sources, model_version.pk) for name, prop in properties.items()
    }
    client.force_login(user)
    response = client.post("/api/v1/renders", json.dumps(payload), content_type="application/json")
    assert response.status_code == 202, response.content
    job = RenderJob.objects.get(pk=response.json()["id"])
    images = list(Image.objects.filter(job=job).order_by("batch_index"))
    assert [image.seed for image in images] == [424242, 424243]
    for recipe_field in recipe_fields():
        expected = payload[input_name(recipe_field)]
        if recipe_field.name in {"seed", "batch_size"}:
            continue  # per image: seed + index; checked above
        assert getattr(images[0], recipe_field.name) == expected, recipe_field.name


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
