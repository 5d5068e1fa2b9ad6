"""Defaults belong to the model (issue #29): the generate form and the render API start a new
recipe from the chosen model's recommended sampling (guidance, steps, scheduler, size), blank or
absent fields take it, and a remix keeps its record's values."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from engine.recipe import input_fields, input_name
from generator.models import Image, RenderJob
from generator.services.model_versions import model_version_recommend
from tests.factories import ImageFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db

SCENES_LIKE = {"guidance": 2.0, "steps": 12, "scheduler": "Euler a", "width": 72, "height": 80}


@pytest.fixture
def recommending(model_version):
    """The default model, stating its sampling as the scene models do."""
    return model_version_recommend(
        model_version=model_version,
        sampling=SCENES_LIKE,
        vocabulary={"en": "circles and squares only", "zh": "只有圆形和正方形"},
        example_prompts={"en": ["a red circle"], "zh": ["红色圆形"]},
    )


def _value(html: str, name: str) -> str:
    """What an input or select of the page holds for `name`."""
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    if tag:
        found = re.search(r'value="([^"]*)"', tag.group(0))
        return unescape(found.group(1)) if found else ""
    select = re.search(rf'<select[^>]*name="{name}".*?</select>', html, re.S)
    assert select, name
    option = re.search(r'<option value="([^"]*)"[^>]*selected', select.group(0))
    assert option, name
    return unescape(option.group(1))


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_the_form_starts_from_the_default_models_sampling(client, user, recommending) -> None:
    client.force_login(user)
    html = _page(client, "/generate/")
    assert float(_value(html, "guidance")) == 2.0
    assert (_value(html, "steps"), _value(html, "scheduler")) == ("12", "Euler a")
    assert (_value(html, "width"), _value(html, "height")) == ("72", "80")


def test_a_model_that_states_nothing_offers_the_recipes_defaults(
    client, user, model_version
) -> None:
    client.force_login(user)
    html = _page(client, "/generate/")
    assert float(_value(html, "guidance")) == 7.5
    assert (_value(html, "steps"), _value(html, "scheduler")) == ("20", "PNDM")


def test_each_model_option_carries_its_sampling_for_the_script(client, user, recommending) -> None:
    other = ModelVersionFactory(name="plain-model")
    client.force_login(user)
    html = _page(client, "/generate/")
    options = {
        int(pk): json.loads(unescape(sampling))
        for pk, sampling in re.findall(r'<option value="(\d+)"[^>]*data-sampling="([^"]*)"', html)
    }
    assert options[recommending.pk] == SCENES_LIKE
    assert options[other.pk] == {
        "scheduler": "PNDM", "steps": 20, "guidance": 7.5, "width": 64, "height": 64
    }  # fmt: skip
    assert "recipe_form.js" in html
    assert "data-follow-model" in html


def _form_post(model_version, **changes) -> dict:
    data = {
        name: ""
        for name in (input_name(f) for f in input_fields())
        if name not in ("model_version", "precision", "mode", "hires")
    }
    return (
        data
        | {
            "model_version": model_version.pk,
            "prompt": "a red circle on a blue background",
            "precision": "fp32",
            "mode": "txt2img",
            "batch_size": "1",
            "clip_skip": "1",
        }
        | changes
    )


def test_blank_form_fields_take_the_chosen_models_values(client, user, model_version) -> None:
    # Not the site's default: the model chosen decides.
    chosen = ModelVersionFactory(name="chosen", path=model_version.path)
    model_version_recommend(model_version=chosen, sampling=SCENES_LIKE)
    client.force_login(user)
    response = client.post("/generate/", _form_post(chosen))
    assert response.status_code == 302, response.content.decode()[-2000:]
    image = Image.objects.get(job=RenderJob.objects.get())
    assert (image.guidance, image.steps, image.scheduler) == (2.0, 12, "Euler a")
    assert (image.width, image.height) == (72, 80)


def test_typed_form_values_win_over_the_models(client, user, recommending) -> None:
    client.force_login(user)
    response = client.post(
        "/generate/", _form_post(recommending, guidance="7.5", steps="9", scheduler="DDIM")
    )
    assert response.status_code == 302
    image = Image.objects.get()
    assert (image.guidance, image.steps, image.scheduler) == (7.5, 9, "DDIM")
    assert (image.width, image.height) == (72, 80)  # left blank: the model's


def _api_render(client, payload: dict) -> Image:
    response = client.post("/api/v1/renders", json.dumps(payload), content_type="application/json")
    assert response.status_code == 202, response.content
    return Image.objects.get(job_id=response.json()["id"])


def test_api_fields_left_out_take_the_models_values(client, user, recommending) -> None:
    client.force_login(user)
    image = _api_render(client, {"prompt": "a red circle on a blue background"})
    assert image.model_version_id == recommending.pk
    assert (image.guidance, image.steps, image.scheduler) == (2.0, 12, "Euler a")
    assert (image.width, image.height) == (72, 80)

    given = _api_render(client, {"prompt": "a red circle", "guidance": 7.5, "width": 64})
    assert (given.guidance, given.steps, given.width, given.height) == (7.5, 12, 64, 80)


def test_api_follows_the_model_named_in_the_request(client, user, model_version) -> None:
    named = ModelVersionFactory(name="named", path=model_version.path)
    model_version_recommend(model_version=named, sampling={"guidance": 3.5, "steps": 8})
    client.force_login(user)
    image = _api_render(client, {"prompt": "a cat", "model_version": named.pk})
    assert (image.guidance, image.steps, image.scheduler) == (3.5, 8, "PNDM")
    plain = _api_render(client, {"prompt": "a cat"})  # the default model states nothing
    assert (plain.guidance, plain.steps) == (7.5, 20)


def test_the_api_schema_says_absent_sampling_follows_the_model(client) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    reference = schema["paths"]["/api/v1/renders"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    properties = schema["components"]["schemas"][reference.rsplit("/", 1)[-1]]["properties"]
    for name in ("guidance", "steps", "scheduler", "width", "height"):
        assert "model's recommended value" in properties[name]["description"], name
    assert "recommended" not in (properties["seed"].get("description") or "")


def _record(model_version, **values) -> Image:
    return ImageFactory(
        model_version=model_version,
        guidance=7.5,
        steps=10,
        scheduler="DDIM",
        width=64,
        height=64,
        **values,
    )


def test_remix_keeps_the_records_values(client, user, recommending) -> None:
    record = _record(recommending)
    client.force_login(user)
    html = _page(client, f"/images/{record.pk}/remix/")
    assert float(_value(html, "guidance")) == 7.5
    assert (_value(html, "steps"), _value(html, "scheduler")) == ("10", "DDIM")
    assert (_value(html, "width"), _value(html, "height")) == ("64", "64")
    assert "data-follow-model" not in html  # the script leaves a remix's values alone

    use_all = _page(client, f"/generate/?from={record.pk}&use=all")
    assert (float(_value(use_all, "guidance")), _value(use_all, "steps")) == (7.5, "10")
    # Only the prompt taken: the rest is a new recipe, the model's.
    prompt_only = _page(client, f"/generate/?from={record.pk}&use=prompt")
    assert (float(_value(prompt_only, "guidance")), _value(prompt_only, "steps")) == (2.0, "12")


def test_the_prompt_says_what_the_model_can_draw_in_the_readers_language(
    client, user, recommending
) -> None:
    client.force_login(user)
    html = _page(client, "/generate/")
    assert re.search(r'id="prompt-vocabulary"[^>]*>[^<]*<span[^>]*>circles and squares only', html)
    assert 'aria-describedby="prompt-vocabulary"' in html
    assert "a red circle" in unescape(html)  # the example, on the option for the script
    chinese = client.get("/generate/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "只有圆形和正方形" in chinese and "红色圆形" in unescape(chinese)


def test_mode_fields_are_marked_for_the_script(client, user, model_version) -> None:
    client.force_login(user)
    html = _page(client, "/generate/")
    assert re.search(r'name="strength"[^>]*data-modes="img2img inpaint"', html) or re.search(
        r'data-modes="img2img inpaint"[^>]*name="strength"', html
    )
    assert re.search(r'data-modes="inpaint"[^>]*name="mask_upload"', html) or re.search(
        r'name="mask_upload"[^>]*data-modes="inpaint"', html
    )


def test_the_model_page_shows_its_recommended_sampling(client, recommending) -> None:
    html = _page(client, f"/models/{recommending.pk}/")
    sampling = re.search(r'data-testid="model-sampling">(.*?)</dd>', html, re.S)
    assert sampling
    text = re.sub(r"<[^>]+>", " ", sampling.group(1))
    for part in ("guidance 2", "12 steps", "Euler a", "72×80"):
        assert part in text, text
    assert "circles and squares only" in html
