"""The search box's filters against the real database: each field, combined with words and with
each other, on the selector, the search page and both APIs; errors on page and API; hostile q."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from django.db import connection

from engine.search_query import FIELDS, parse_query
from gallery.forms.search import query_filters
from gallery.models import Collection, CollectionItem
from generator.models import Image, Reproduction
from generator.models.jobs import RenderJob
from generator.services.records import image_keywords_index
from search.models import EMBEDDING_DIM, ImageEmbedding
from search.selectors import active_model_name, search_images
from tests.factories import ImageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(media_root, tiny_sd_path):
    return media_root


def record(prompt: str, **fields) -> Image:
    image = ImageFactory(prompt=prompt, **fields)
    image_keywords_index(image_ids=[image.pk])
    vector = np.random.default_rng(image.pk).normal(size=EMBEDDING_DIM).astype(np.float32)
    ImageEmbedding.objects.create(
        image=image,
        model_name=active_model_name(),
        dim=EMBEDDING_DIM,
        embedding=vector / np.linalg.norm(vector),
    )
    return image


def found(query: str, mode: str = "hybrid") -> list[int]:
    parsed = parse_query(query)
    results = search_images(
        query=parsed.text, mode=mode, filters=query_filters(parsed), min_score=-1.0, limit=50
    )
    return [hit.image.pk for hit in results.hits]


def test_seed_finds_that_record_first_alone_and_with_words(media) -> None:
    others = [record(f"a red fox number {n}") for n in range(5)]
    target = record("a red fox by the lake", seed=1010)
    assert found("seed:1010") == [target.pk]
    assert found("seed:1010 red")[0] == target.pk
    assert found("seed:1010 red", mode="vector") == [target.pk]
    assert target.pk not in found(f"seed:{others[0].seed}")


def test_steps_sampler_and_words_combine(media) -> None:
    wanted = record("a red kite", steps=40, scheduler="DDIM")
    record("a red kite", steps=20, scheduler="DDIM")  # too few steps
    record("a red kite", steps=40, scheduler="PNDM")  # another sampler
    record("a blue kite", steps=40, scheduler="DDIM")  # not red
    assert found("steps:>30 sampler:DDIM red", mode="keyword") == [wanted.pk]
    assert found("steps:>30 sampler:ddim red") == [wanted.pk] or wanted.pk in found(
        "steps:>30 sampler:ddim red"
    )
    # Hybrid keeps vector matches of the filtered records, but the keyword match ranks first.
    assert found("steps:>30 sampler:DDIM red")[0] == wanted.pk
    assert set(found("steps:30..50 sampler:DDIM")) == {wanted.pk, *found("sampler:DDIM -red")}


def test_guidance_size_user_model_and_lang(media) -> None:
    alice = UserFactory(username="alice")
    low = record("watercolour harbour", guidance=2.0, width=512, height=512, owner=alice)
    high = record("watercolour harbour", guidance=9.0, width=512, height=768)
    chinese = record("水彩 港口 watercolour")
    assert found("guidance:<3") == [low.pk]
    assert found("guidance:>=9 harbour") == [high.pk]
    assert found("size:512x512") == [low.pk]
    assert set(found("size:512x")) == {low.pk, high.pk}
    assert found("user:alice") == [low.pk]
    assert found("user:nobody") == []
    assert found(f"model:{high.model_name.upper()}") == [high.pk]  # matched to the registry
    assert found("lang:zh") == [chinese.pk]
    assert chinese.pk not in found("lang:en watercolour")


def test_lora_by_name_or_sha256_prefix(media) -> None:
    digest = hashlib.sha256(b"pixel").hexdigest()
    lora = {"resource": digest, "weight": 0.8, "name": "pixel-art"}
    styled = record("castle", loras=[lora])
    record("castle", loras=[{**lora, "resource": "f" * 64, "name": "other"}])
    assert found("lora:pixel-art") == [styled.pk]
    assert found(f"lora:{digest[:10].upper()}") == [styled.pk]
    assert found("lora:pixel-art lora:other") == []
    # Digests sharing their first 6 hex digits (the index's heads): the whole prefix decides.
    alike = record("castle", loras=[{**lora, "resource": digest[:6] + "0" * 58, "name": "alike"}])
    assert set(found(f"lora:{digest[:6]}")) == {styled.pk, alike.pk}
    assert found(f"lora:{digest[:7]}") == [styled.pk]
    assert found(f"lora:{digest}") == [styled.pk]
    # A second LoRA is found by its digest as well as the first.
    both = record("castle", loras=[lora, {**lora, "resource": "e" * 64, "name": "second"}])
    assert set(found("lora:eeeeeeee")) == {both.pk}
    assert set(found(f"lora:{digest[:10]}")) == {styled.pk, both.pk}


@pytest.mark.parametrize(
    ("loras", "heads"),
    [
        ([], []),
        ([{"resource": "ABCDEF" + "0" * 58}], ["abcdef"]),
        ([{"resource": "a" * 64}, {"resource": "a" * 63 + "b"}, {"name": "no digest"}], ["aaaaaa"]),
        ({"not": "a list"}, []),
        (["a string"], []),
    ],
)
def test_lora_heads_of_any_stored_shape(loras, heads) -> None:
    """The index's SQL function never fails on a row (an error would fail the write itself)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT seedbank_lora_heads(%s::jsonb)", [json.dumps(loras)])
        assert cursor.fetchone()[0] == heads


def test_verified_collection_phrases_and_excluded_words(media) -> None:
    verified = record("the red cat sleeps")
    other = record("a cat, red and sleepy", negative_prompt="dog")
    dog = record("red dog and cat")
    Reproduction.objects.create(
        image=verified,
        job=RenderJob.objects.create(),
        verdict=Reproduction.Verdict.BIT_IDENTICAL,
    )
    assert found("verified:yes") == [verified.pk]
    assert verified.pk not in found("verified:no")
    assert found('"red cat"') == [verified.pk]
    assert found('"red cat"', mode="vector") == [verified.pk]  # a phrase filters every mode
    assert set(found("cat -dog", mode="keyword")) == {verified.pk, other.pk}  # prompt only
    assert found('cat -"red dog"', mode="keyword") != [] and dog.pk not in found('-"red dog"')
    favourites = Collection.objects.create(slug="favourites", title="Favourites", is_public=True)
    CollectionItem.objects.create(collection=favourites, image=other)
    assert found("collection:favourites cat") == [other.pk]


def test_search_page_and_apis_take_the_same_language(client, media) -> None:
    target = record("a red lighthouse", seed=1010, steps=40, scheduler="DDIM")
    record("a red lighthouse", seed=7)
    page = client.get("/search/", {"q": "seed:1010 red", "min_score": "-1"})
    assert page.status_code == 200
    assert f'href="/images/{target.pk}/"' in page.content.decode()
    api = client.get("/api/v1/images", {"q": "steps:>30 sampler:DDIM red", "min_score": "-1"})
    assert [row["id"] for row in api.json()["results"]] == [target.pk]
    lexica = client.get("/api/v1/search", {"q": "seed:1010"}).json()
    assert [row["id"] for row in lexica["images"]] == [str(target.pk)]


def test_the_box_wins_over_a_form_field_naming_the_same_filter(client, media) -> None:
    target = record("fox", seed=5)
    record("fox", seed=6)
    api = client.get("/api/v1/images", {"q": "seed:5 fox", "seed": "6", "min_score": "-1"})
    assert [row["id"] for row in api.json()["results"]] == [target.pk]


@pytest.mark.parametrize(
    "q", ["colour:red", "seed:99999999999999999999", "steps:>many", "collection:nope"]
)
def test_errors_are_messages_on_the_page_and_400_in_the_apis(client, media, q) -> None:
    page = client.get("/search/", {"q": q})
    assert page.status_code == 400
    assert 'role="alert"' in page.content.decode()
    api = client.get("/api/v1/images", {"q": q})
    assert api.status_code == 400 and api.json()["errors"]["q"]
    if q != "collection:nope":  # Lexica's shape: its collection filter is the box's only
        assert client.get("/api/v1/search", {"q": q}).status_code == 400


def test_unknown_field_message_is_translated(client, media) -> None:
    page = client.get("/search/", {"q": "colour:red"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "未知的筛选条件" in page.content.decode()


@pytest.mark.parametrize(
    "q",
    [
        '"unbalanced',
        "a\x00b seed:1",
        "x" * 600,
        " ".join(f"-w{n}" for n in range(60)),
        "seed:" + "9" * 400,
        "'; DROP TABLE generator_image; --",
        '"\'" -"\\" lora:%_ user:%',
        "猫 seed:5 \u202e",
    ],
)
def test_hostile_queries_get_an_answer_never_a_server_error(client, media, q) -> None:
    record("a cat")
    for response in (
        client.get("/search/", {"q": q}),
        client.get("/api/v1/images", {"q": q}),
        client.get("/api/v1/search", {"q": q}),
    ):
        assert response.status_code in {200, 400}, (q, response.status_code)
    assert Image.objects.count() == 1


def test_the_help_popover_lists_every_field_with_an_example(client, media) -> None:
    page = client.get("/search/").content.decode()
    help_html = page[page.index('data-testid="query-help"') :]
    help_html = help_html[: help_html.index("</details>")]
    for example in FIELDS.values():
        assert f"<code>{example.replace('>', '&gt;').replace('<', '&lt;')}</code>" in help_html
