"""The home page for a first visit (issue #29): an introduction with example searches that find
demo records, in English and Chinese; the demo's featured collections, made once."""

from __future__ import annotations

import html
import io
import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import translation

from gallery.demo import (
    DEMO_COLLECTIONS,
    DEMO_MODEL_PROMPT_INDEXES,
    DEMO_PROMPTS,
    DEMO_REMIX_PROMPTS,
    DEMO_REMIXES,
)
from gallery.management.commands.seed_demo import DEMO_USERNAME
from gallery.models import Collection, CollectionItem
from gallery.services import staff_user_ensure
from gallery.views.records import INTRO_SEARCHES
from generator.models import Image
from generator.services.records import image_keywords_index
from search.selectors import search_images
from tests.config.test_translations import ZH, compiled_catalogue  # noqa: F401 (a fixture)
from tests.factories import ImageFactory, ModelVersionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compiled_catalogue")]

SEARCH_LINK = re.compile(r'<a href="(/search/\?q=[^"]*)" data-testid="intro-search">([^<]*)</a>')


@pytest.fixture
def demo(media_root, tiny_sd_path) -> dict[str, list[Image]]:
    """The demo gallery as seed_demo leaves it, without rendering: the demo prompts by the
    base model, four of them again by two other models, and the one-word remixes."""
    user = staff_user_ensure(username=DEMO_USERNAME, password="pw-for-tests-9")
    base, outline, blend = (ModelVersionFactory() for _ in range(3))
    roots = [ImageFactory(prompt=prompt, model_version=base, owner=user) for prompt in DEMO_PROMPTS]
    others = [
        ImageFactory(prompt=DEMO_PROMPTS[index], model_version=model, owner=user)
        for model in (outline, blend)
        for index in DEMO_MODEL_PROMPT_INDEXES
    ]
    remixes = [
        ImageFactory(prompt=prompt, model_version=base, owner=user, parent=roots[index])
        for (index, _, _), prompt in zip(DEMO_REMIXES, DEMO_REMIX_PROMPTS, strict=True)
    ]
    image_keywords_index(image_ids=[image.pk for image in [*roots, *others, *remixes]])
    return {"roots": roots, "others": others, "remixes": remixes}


def _intro(body: str) -> str:
    assert body.count('data-testid="intro"') == 1
    return body.split('data-testid="intro"')[1].split("</section>")[0]


def test_visitors_get_an_introduction_in_english_and_chinese_with_searches_that_find_demo_records(
    demo,
) -> None:
    pages = {
        "en": Client().get("/").content.decode(),
        "zh-hans": Client().get("/", **ZH).content.decode(),
    }
    english, chinese = _intro(pages["en"]), _intro(pages["zh-hans"])
    assert "<strong>Welcome to Seedbank</strong>, an open archive of AI-generated" in english
    assert "re-render it bit for bit" in english and "<strong>Remix</strong>" in english
    assert "Try a search:" in english and "欢迎" not in english
    assert "<strong>欢迎来到 Seedbank</strong>" in chinese and "逐位一致" in chinese
    assert "试试搜索：" in chinese and "<strong>重混</strong>" in chinese
    assert "Welcome" not in chinese and "Try a search" not in chinese
    # The intro comes before the collections and the grid: it is what a first visit reads.
    assert pages["en"].index('data-testid="intro"') < pages["en"].index('id="feed"')

    for language, intro in (("en", english), ("zh-hans", chinese)):
        links = SEARCH_LINK.findall(intro)
        with translation.override(language):
            expected = [str(query) for query in INTRO_SEARCHES]
        assert [html.unescape(text) for _, text in links] == expected
        assert len(links) == 3
        for href, text in links:
            query = parse_qs(urlparse(html.unescape(href)).query)["q"][0]
            assert query == html.unescape(text)
            # By its words alone (no CLIP vectors here), each finds demo records.
            assert search_images(query=query, mode="keyword").hits, (language, query)
            page = Client().get(html.unescape(href), HTTP_ACCEPT_LANGUAGE=language)
            assert page.status_code == 200
    assert [q for _, q in SEARCH_LINK.findall(chinese)] == ["猫", "星星", "橙色正方形"]


def test_signed_in_users_and_later_pages_get_no_introduction(demo, user) -> None:
    client = Client()
    more = re.search(r'<a href="(\?before=[^"]+)" rel="next">', client.get("/").content.decode())
    assert more is not None
    later = client.get("/" + html.unescape(more.group(1))).content.decode()
    assert 'data-testid="intro"' not in later and 'class="card"' in later
    client.force_login(user)
    body = client.get("/").content.decode()
    assert 'data-testid="intro"' not in body and 'id="feed"' in body


def test_seed_demo_makes_the_featured_collections_once(demo) -> None:
    roots, others, remixes = demo["roots"], demo["others"], demo["remixes"]
    for _ in range(2):  # `make run` runs seed_demo every time: the second run adds nothing
        out = io.StringIO()
        call_command("seed_demo", stdout=out)
    assert "Gallery already has images" in out.getvalue()
    collections = list(Collection.objects.order_by("position"))
    assert [c.slug for c in collections] == [spec.slug for spec in DEMO_COLLECTIONS]
    assert len(collections) == 3 and CollectionItem.objects.count() == 9 + 12 + 16
    assert all(c.is_public and c.is_featured for c in collections)
    assert all(c.created_by.username == DEMO_USERNAME for c in collections)

    def items(collection: Collection) -> list[int]:
        return list(collection.items.order_by("position").values_list("image_id", flat=True))

    cats, models, one_word = collections
    assert all("cat" in Image.objects.get(pk=pk).prompt or "猫" in Image.objects.get(pk=pk).prompt
               for pk in items(cats))  # fmt: skip
    # The three models' renders of one prompt side by side, base first.
    by_prompt = {image.prompt: image for image in roots}
    first = DEMO_PROMPTS[DEMO_MODEL_PROMPT_INDEXES[0]]
    assert items(models)[:3] == [by_prompt[first].pk] + [
        image.pk for image in others if image.prompt == first
    ]
    pairs = [pk for remix in remixes for pk in (remix.parent_id, remix.pk)]
    assert items(one_word) == pairs
    assert cats.cover_id == items(cats)[0]

    # A staff edit stays: a removed record is not put back, a deleted collection comes back.
    CollectionItem.objects.filter(collection=one_word, image_id=pairs[0]).delete()
    cats.delete()
    call_command("seed_demo", stdout=io.StringIO())
    assert Collection.objects.count() == 3
    assert items(one_word) == pairs[1:]

    # The home page shows them, featured (first, marked).
    body = Client().get("/").content.decode()
    section = body.split('class="collections"')[1].split("</section>")[0]
    assert section.count('class="card featured"') == 3
    for spec in DEMO_COLLECTIONS:
        assert f'href="/collections/{spec.slug}/"' in section
        assert html.escape(spec.title) in section


def test_seed_demo_waits_for_records_still_rendering(demo) -> None:
    pending = demo["remixes"][0]
    Image.objects.filter(pk=pending.pk).update(status=Image.Status.PENDING)
    call_command("seed_demo", stdout=io.StringIO())
    # The one-word collection waits for its remix (a blue circle); the others are made.
    made = set(Collection.objects.values_list("slug", flat=True))
    assert made == {"demo-cats", "demo-one-recipe-three-models"}
    Image.objects.filter(pk=pending.pk).update(status=Image.Status.READY)
    call_command("seed_demo", stdout=io.StringIO())
    assert Collection.objects.count() == 3
