"""The record page's lineage tree and the diff page of two recipes."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generator.models import Image
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(media_root) -> list[Image]:
    """root → child (prompt word) → grandchild (seed) → great-grandchild (scheduler)."""
    root = ImageFactory(prompt="a red fox in the snow", seed=42, scheduler="PNDM")
    same = {"model_version": root.model_version}
    child = ImageFactory(prompt="a blue fox in the snow", seed=42, scheduler="PNDM",
                         parent=root, **same)  # fmt: skip
    grandchild = ImageFactory(prompt="a blue fox in the snow", seed=43, scheduler="PNDM",
                              parent=child, **same)  # fmt: skip
    great = ImageFactory(prompt="a blue fox in the snow", seed=43, scheduler="Euler",
                         parent=grandchild, **same)  # fmt: skip
    return [root, child, grandchild, great]


def _tree(body: str) -> str:
    match = re.search(r'<section class="lineage">.*?</section>', body, re.S)
    assert match, "no lineage section"
    return match.group(0)


def _node_ids(tree: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-record="(\d+)"', tree)]


def _compact(html: str) -> str:
    return re.sub(r"\s+", " ", html)


def test_the_leaf_shows_three_ancestors_with_labelled_edges(client, chain) -> None:
    root, child, grandchild, great = chain
    tree = _tree(client.get(f"/images/{great.pk}/").content.decode())
    assert _node_ids(tree) == [root.pk, child.pk, grandchild.pk, great.pk]
    # Nested: each record's <ul> holds the next one.
    assert tree.count("<ul") == 4
    assert f'href="/images/{great.pk}/" aria-current="page"' in tree
    assert tree.count('aria-current="page"') == 1
    text = _compact(tree)
    assert "<del>red</del> → <ins>blue</ins>" in text
    assert "Seed 42 → 43" in text
    assert "Scheduler PNDM → Euler" in text
    for parent, remix in ((root, child), (child, grandchild), (grandchild, great)):
        assert f'href="/images/{parent.pk}/diff/{remix.pk}/"' in tree
    assert tree.count("compare with parent") == 3


def test_the_root_shows_its_descendants_three_levels_deep(client, chain) -> None:
    root, child, grandchild, great = chain
    deeper = ImageFactory(parent=great)  # a fourth level: counted, not shown
    tree = _tree(client.get(f"/images/{root.pk}/").content.decode())
    assert _node_ids(tree) == [root.pk, child.pk, grandchild.pk, great.pk]
    assert deeper.pk not in _node_ids(tree)
    assert f'href="/images/{root.pk}/" aria-current="page"' in tree
    assert "and 1 more remix" in _compact(tree)
    assert "An original recipe" in tree


def test_a_hidden_record_is_not_public_to_visitors_but_shown_to_staff(
    client, chain, staff_user, user
) -> None:
    root, child, grandchild, great = chain
    Image.objects.filter(pk=child.pk).update(hidden=True, prompt="secret hidden words")
    for who in (None, user):
        client.logout()
        if who is not None:
            client.force_login(who)
        tree = _tree(client.get(f"/images/{root.pk}/").content.decode())
        assert "A record that is not public" in tree
        assert "secret hidden words" not in tree
        assert _node_ids(tree) == [root.pk]  # neither the hidden one nor its subtree
        assert f"/images/{child.pk}/" not in tree and f"/images/{grandchild.pk}/" not in tree
        # From below: the chain stops at it, with nothing about its recipe.
        tree = _tree(client.get(f"/images/{great.pk}/").content.decode())
        assert "A record that is not public" in tree and root.prompt not in tree
        assert _node_ids(tree) == [grandchild.pk, great.pk]
        assert f"/images/{child.pk}/" not in tree

    client.force_login(staff_user)
    tree = _tree(client.get(f"/images/{root.pk}/").content.decode())
    assert _node_ids(tree) == [root.pk, child.pk, grandchild.pk, great.pk]
    assert "secret hidden words" in tree and "(hidden)" in tree


def test_the_record_page_pays_one_query_for_the_whole_tree(client, chain) -> None:
    """However big the tree, the page's query count is that of a record with no lineage."""
    root = chain[0]
    for remix in ImageFactory.create_batch(3, parent=root):
        ImageFactory.create_batch(3, parent=remix)
    alone = ImageFactory()

    def queries(image: Image) -> list[str]:
        client.get(f"/images/{image.pk}/")  # settle per-process caches
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/images/{image.pk}/").status_code == 200
        return [q["sql"] for q in captured.captured_queries]

    in_tree = queries(chain[1])
    assert len(in_tree) == len(queries(alone))
    assert sum("WITH RECURSIVE" in sql for sql in in_tree) == 1


def test_diff_page_marks_the_changed_fields(client, chain) -> None:
    root, child, grandchild, _ = chain
    response = client.get(reverse("image_diff", args=[root.pk, grandchild.pk]))
    assert response.status_code == 200
    body = _compact(response.content.decode())
    changed = re.findall(r'<tr class="changed" data-testid="changed-row" data-field="(\w+)"', body)
    assert changed == ["prompt", "seed"]
    assert body.count("(changed)") == 2  # marked in words, not only by colour
    assert re.search(r"<del><span class=\"diff-sr\">removed: </span>red</del>", body)
    assert re.search(r"<ins><span class=\"diff-sr\">added: </span>blue</ins>", body)
    assert f'src="{root.display_url}"' in body and f'src="{grandchild.display_url}"' in body
    assert 'data-field="scheduler"' in body  # unchanged fields are rows too
    assert "2 fields differ." in body

    same = client.get(reverse("image_diff", args=[child.pk, child.pk])).content.decode()
    assert "Same recipe" in same and 'class="changed"' not in same


def test_diff_page_is_404_for_hidden_or_missing_records(client, chain, staff_user) -> None:
    root, child, *_ = chain
    Image.objects.filter(pk=child.pk).update(hidden=True)
    assert client.get(f"/images/{root.pk}/diff/{child.pk}/").status_code == 404
    assert client.get(f"/images/{child.pk}/diff/{root.pk}/").status_code == 404
    assert client.get(f"/images/{root.pk}/diff/999999999/").status_code == 404
    pending = ImageFactory(status=Image.Status.PENDING)
    assert client.get(f"/images/{root.pk}/diff/{pending.pk}/").status_code == 404
    assert client.post(f"/images/{root.pk}/diff/{root.pk}/").status_code == 405
    client.force_login(staff_user)
    assert client.get(f"/images/{root.pk}/diff/{child.pk}/").status_code == 200


def test_prompts_are_escaped_in_the_tree_and_the_diff(client, media_root) -> None:
    parent = ImageFactory(prompt="a quiet fox")
    remix = ImageFactory(prompt="<script>alert(1)</script> fox", parent=parent)
    for url in (f"/images/{parent.pk}/", f"/images/{parent.pk}/diff/{remix.pk}/"):
        body = client.get(url).content.decode()
        assert "<script>alert(1)" not in body, url
        assert "&lt;script&gt;alert(1)" in body, url
