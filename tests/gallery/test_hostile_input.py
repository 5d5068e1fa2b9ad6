"""Hostile and malformed input gets a 400 with a message, never a 500 (issue: hostile input)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from generator.models import RenderJob, SourceImage
from generator.services.records import source_image_store
from tests.factories import ImageFactory

# Searches by words embed the query with the tiny CLIP, built on first use.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_sd_path")]


@pytest.fixture
def quiet_client() -> Client:
    return Client(raise_request_exception=False)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"width": "32768"}, "width"),  # past the smallint column the filter reads
        ({"height": "32768"}, "height"),
        ({"width": "99999999999999999999"}, "width"),
        ({"seed": "9223372036854775808"}, "seed"),  # past bigint
        ({"seed": "4294967296"}, "seed"),  # past the largest recipe seed
        ({"seed": "-1"}, "seed"),
        ({"width": "0"}, "width"),
        ({"min_score": "nan"}, "min_score"),
        ({"min_score": "inf"}, "min_score"),
        ({"min_score": "1e999"}, "min_score"),
        ({"page": "99999999999999999999"}, "page"),
        ({"like": "abc"}, "like"),
    ],
)
def test_out_of_range_search_filters_are_a_400_naming_the_field(quiet_client, params, field):
    response = quiet_client.get("/search/", {"q": "cat", **params})
    assert response.status_code == 400, response.content[:300]
    form = response.context["form"]
    assert field in form.errors, form.errors
    assert str(form.errors[field][0]) in response.content.decode()  # shown beside the filter
    response = quiet_client.get("/api/v1/images", {"q": "cat", **params})
    if field == "page":  # the API pages by cursor: page is not one of its parameters
        return
    assert response.status_code == 400, response.content[:300]
    errors = response.json()["errors"]
    assert list(errors) == [field] and all(isinstance(m, str) and m for m in errors[field])


def test_the_largest_valid_filters_still_search(quiet_client):
    params = {"q": "cat", "width": "32767", "height": "32767", "seed": str(2**32 - 1)}
    assert quiet_client.get("/search/", params).status_code == 200
    response = quiet_client.get("/api/v1/images", params)
    assert response.status_code == 200 and response.json()["results"] == []


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("field", ["guidance", "strength", "refiner_switch_at"])
def test_non_finite_numbers_in_a_render_body_are_refused(client, user, model_version, field, value):
    client.force_login(user)
    body = f'{{"prompt": "x", "{field}": {value}}}'
    response = client.post("/api/v1/renders", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field]
    assert RenderJob.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/images?q=",
        "/api/v1/images?q=%20",
        "/api/v1/search?q=%00",
        "/users/%00/",
        "/collections/%00/",
        "/search/?q=%00",
        "/api/v1/images?q=%00",
        "/images/99999999999999999999999/",
        "/api/v1/images?q=cat&limit=99999999999999999999999",
        "/api/v1/images?q=cat&seed=-5",
    ],
)
def test_hostile_urls_answer_4xx(quiet_client, url) -> None:
    assert 400 <= quiet_client.get(url).status_code < 500


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("[" * 100_000, "__all__"),  # nesting deeper than any parser's recursion limit
        ('{"prompt": "x", "seed": ' + "9" * 5000 + "}", "__all__"),  # past int()'s digit limit
        ('{"prompt": "\\ud800"}', "prompt"),  # a lone surrogate: not storable text
        ('{"prompt": "a\\u0000b"}', "prompt"),  # NUL: Postgres text cannot hold it
        ('{"prompt": "x", "steps": true}', "steps"),  # a boolean is not a number
        ('{"prompt": "x", "guidance": "7.5"}', "guidance"),  # a string is not a number
        ('{"prompt": {"text": "a cat"}}', "prompt"),  # an object is not a prompt
        ('{"prompt": ["a cat"]}', "prompt"),
        ("null", "__all__"),  # no object at all: "Send a JSON object."
        ('"a cat"', "__all__"),
    ],
)
def test_hostile_render_bodies_answer_400_by_field(client, user, model_version, body, field):
    client.force_login(user)
    response = client.post("/api/v1/renders", body, content_type="application/json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors and all(isinstance(m, str) and m for m in errors[field]), errors
    assert RenderJob.objects.count() == 0


def test_integers_are_accepted_where_numbers_are_asked(client, user, model_version) -> None:
    client.force_login(user)
    payload = {"prompt": "x", "guidance": 7, "steps": 4}
    response = client.post("/api/v1/renders", json.dumps(payload), content_type="application/json")
    assert response.status_code == 202, response.content


TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)


@settings(max_examples=60, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(q=TEXT, mode=TEXT, width=TEXT, seed=TEXT, nsfw=TEXT, cursor=TEXT)
def test_search_parameters_never_500(quiet_client, q, mode, width, seed, nsfw, cursor) -> None:
    params = {"q": q, "mode": mode, "width": width, "seed": seed, "nsfw": nsfw}
    for url in ("/search/", "/api/v1/images", "/api/v1/search"):
        response = quiet_client.get(url, {**params, "cursor": cursor})
        assert response.status_code < 500, (url, params, response.content[:300])


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(prompt=TEXT, steps=TEXT, width=TEXT, scheduler=TEXT, strength=TEXT, mask_data=TEXT)
def test_the_generate_form_never_500(
    user, model_version, prompt, steps, width, scheduler, strength, mask_data
) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    data = {
        "model_version": model_version.pk, "prompt": prompt, "steps": steps, "width": width,
        "scheduler": scheduler, "strength": strength, "mask_data": mask_data, "mode": "img2img",
    }  # fmt: skip
    response = client.post("/generate/", data)
    assert response.status_code < 500, (data, response.content[:300])


def _source(mode: str, size: tuple[int, int], fill: object, kind: str, owner) -> SourceImage:
    return source_image_store(picture=PILImage.new(mode, size, fill), kind=kind, owner=owner)


@pytest.fixture
def stored(user, django_user_model, media_root) -> dict[str, SourceImage]:
    """Init images and masks by how usable they are to `user`."""
    stranger = django_user_model.objects.create_user(username="eve", password="pw-for-tests-3")
    lost = _source("RGB", (64, 64), "green", "init", user)
    Path(lost.file.path).unlink()
    return {
        "init": _source("RGB", (64, 64), "red", "init", user),
        "mask": _source("L", (64, 64), 255, "mask", user),
        "small mask": _source("L", (32, 48), 255, "mask", user),
        "theirs": _source("RGB", (64, 64), "blue", "init", stranger),
        "lost": lost,
    }


# (mode, init_image_id, mask_id, the recipe field refused): ids by name in `stored`.
UNUSABLE_SOURCES = [
    ("img2img", 99_999_999, None, "init_image"),  # no such upload
    ("img2img", 2**63, None, "init_image"),  # past bigint
    ("img2img", -1, None, "init_image"),
    ("img2img", "theirs", None, "init_image"),  # someone else's private upload
    ("img2img", "mask", None, "init_image"),  # a mask is not an init image
    ("img2img", "lost", None, "init_image"),  # its file is gone from the disk
    ("inpaint", "init", "init", "mask"),  # an init image is not a mask
    ("inpaint", "init", 10**30, "mask"),
    ("inpaint", "init", "small mask", "mask"),  # 32×48 over a 64×64 init image
]


def _ids(stored, *values):
    return [stored[v].pk if v in stored else v for v in values]


@pytest.mark.parametrize(("mode", "init", "mask", "field"), UNUSABLE_SOURCES)
def test_unusable_stored_inputs_are_a_400_naming_the_field_in_the_api(
    client, user, model_version, stored, mode, init, mask, field
):
    init_id, mask_id = _ids(stored, init, mask)
    client.force_login(user)
    body = {"prompt": "a cat", "mode": mode, "strength": 0.5, "init_image_id": init_id}
    if mask is not None:
        body["mask_id"] = mask_id
    response = client.post("/api/v1/renders", json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == [field] and errors[field][0], errors
    assert RenderJob.objects.count() == 0


FORM_FIELD = {"init_image": "init_image_id", "mask": "mask_id"}


@pytest.mark.parametrize(
    ("mode", "init", "mask", "field"),
    [
        *UNUSABLE_SOURCES,
        ("img2img", "abc", None, "init_image"),  # "Enter a whole number."
        ("img2img", "1.5", None, "init_image"),
    ],
)
def test_unusable_stored_inputs_are_a_400_naming_the_field_in_the_form(
    quiet_client, user, model_version, stored, mode, init, mask, field
):
    init_id, mask_id = _ids(stored, init, mask)
    quiet_client.force_login(user)
    data = {"model_version": model_version.pk, "prompt": "a cat", "mode": mode,
            "strength": "0.5", "init_image_id": init_id, "mask_id": mask_id or ""}  # fmt: skip
    response = quiet_client.post("/generate/", data)
    assert response.status_code == 400, response.content[:300]
    form = response.context["form"]
    assert list(form.errors) == [FORM_FIELD[field]], form.errors
    assert str(form.errors[FORM_FIELD[field]][0]) in response.content.decode()
    assert RenderJob.objects.count() == 0


def test_an_uploaded_mask_of_another_size_than_the_uploaded_init_image_is_refused(
    client, user, model_version
):
    client.force_login(user)
    data = {"model_version": model_version.pk, "prompt": "a cat", "mode": "inpaint",
            "strength": "0.5", "init_upload": _png("RGB", (64, 64)),
            "mask_upload": _png("L", (64, 32))}  # fmt: skip
    response = client.post("/generate/", data)
    assert response.status_code == 400
    assert "The mask is 64×32 pixels and the init image 64×64" in response.content.decode()
    assert not SourceImage.objects.exists()  # nothing stored for a refused recipe


def test_usable_stored_inputs_render(client, user, model_version, stored, sent):
    client.force_login(user)
    body = {"prompt": "a cat", "mode": "inpaint", "strength": 0.5,
            "init_image_id": stored["init"].pk, "mask_id": stored["mask"].pk}  # fmt: skip
    response = client.post("/api/v1/renders", json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content
    data = {**body, "model_version": model_version.pk, "strength": "0.5"}
    assert client.post("/generate/", data).status_code == 302


def test_the_generate_preview_shows_only_the_viewers_own_init_images(
    client, user, model_version, stored
):
    client.force_login(user)
    # An invalid form (no prompt) is shown again, with the preview of the init image it names.
    data = {"model_version": model_version.pk, "prompt": "", "mode": "img2img", "strength": "0.5"}
    mine = client.post("/generate/", {**data, "init_image_id": stored["init"].pk})
    assert mine.status_code == 400 and mine.context["init_source"] is not None
    assert stored["init"].file.name in mine.content.decode()
    theirs = client.post("/generate/", {**data, "init_image_id": stored["theirs"].pk})
    assert theirs.status_code == 400 and theirs.context["init_source"] is None
    page = theirs.content.decode()
    assert stored["theirs"].file.name not in page and "init-preview" not in page
    # ...and the file itself is not served to them.
    assert client.get(stored["theirs"].file.url).status_code == 404
    assert client.get(stored["init"].file.url).status_code == 200


def _png(mode: str, size: tuple[int, int]) -> io.BytesIO:
    buffer = io.BytesIO()
    PILImage.new(mode, size).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "upload.png"
    return buffer


def test_remix_refuses_someone_elses_upload_by_field(client, user, model_version, stored):
    parent = ImageFactory(model_version=model_version)
    client.force_login(user)
    data = {"model_version": model_version.pk, "prompt": "a cat", "mode": "img2img",
            "strength": "0.5", "init_image_id": stored["theirs"].pk}  # fmt: skip
    response = client.post(f"/images/{parent.pk}/remix/", data)
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["init_image_id"]
    assert response.context["init_source"] is None
    assert RenderJob.objects.count() == 0
