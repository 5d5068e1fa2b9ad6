"""A record's lineage tree: ancestors, descendants, edge labels, visibility, bounded queries."""

from __future__ import annotations

import pytest

from generator.models import Image, SourceImage
from generator.selectors.lineage import (
    ANCESTORS_MAX,
    CHILDREN_MAX,
    LineageNode,
    image_lineage,
    images_comparison,
)
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(media_root) -> list[Image]:
    """root → child (prompt word) → grandchild (seed) → great-grandchild (scheduler)."""
    root = ImageFactory(prompt="a red fox in the snow", seed=42, scheduler="PNDM")
    child = ImageFactory(
        prompt="a blue fox in the snow", seed=42, scheduler="PNDM", parent=root,
        model_version=root.model_version,
    )  # fmt: skip
    grandchild = ImageFactory(
        prompt="a blue fox in the snow", seed=43, scheduler="PNDM", parent=child,
        model_version=root.model_version,
    )  # fmt: skip
    great = ImageFactory(
        prompt="a blue fox in the snow", seed=43, scheduler="Euler", parent=grandchild,
        model_version=root.model_version,
    )  # fmt: skip
    return [root, child, grandchild, great]


def _path(node: LineageNode) -> list[LineageNode]:
    """The first-child path from `node` down."""
    nodes = [node]
    while node.children:
        node = node.children[0]
        nodes.append(node)
    return nodes


def _labels(node: LineageNode) -> list[tuple[str, object, object]] | None:
    if node.changes is None:
        return None
    return [(c.field, c.before, c.after) for c in node.changes]


def test_the_leaf_sees_its_ancestors_root_first_with_what_each_remix_changed(chain) -> None:
    root, child, grandchild, great = chain
    lineage = image_lineage(image=great)
    nodes = _path(lineage.root)
    assert [n.pk for n in nodes] == [root.pk, child.pk, grandchild.pk, great.pk]
    assert lineage.ancestors == 3 and not lineage.earlier and not lineage.is_original
    assert lineage.current is nodes[-1] and nodes[-1].current and not nodes[-1].children
    assert nodes[0].changes is None  # the root: an original recipe, nothing to compare with
    (prompt_change,) = nodes[1].changes or []
    assert [(h.removed, h.added) for h in prompt_change.hunks] == [("red", "blue")]
    assert _labels(nodes[1]) == [("prompt", "a red fox in the snow", "a blue fox in the snow")]
    assert _labels(nodes[2]) == [("seed", 42, 43)]
    assert _labels(nodes[3]) == [("scheduler", "PNDM", "Euler")]
    assert nodes[3].parent_pk == grandchild.pk


def test_the_root_sees_three_levels_of_descendants(chain) -> None:
    root, child, grandchild, great = chain
    lineage = image_lineage(image=root)
    assert lineage.is_original and lineage.root is lineage.current
    nodes = _path(lineage.root)
    assert [n.pk for n in nodes] == [root.pk, child.pk, grandchild.pk, great.pk]
    assert _labels(nodes[3]) == [("scheduler", "PNDM", "Euler")]
    assert all(n.more == 0 for n in nodes)
    # One level less: the great-grandchild is counted under its parent, not shown.
    shallow = _path(image_lineage(image=root, depth=2).root)
    assert [n.pk for n in shallow] == [root.pk, child.pk, grandchild.pk]
    assert shallow[-1].more == 1


def test_a_new_model_is_named_once_on_the_edge(media_root) -> None:
    parent = ImageFactory(prompt="a fox", seed=7)
    ImageFactory(prompt="a fox", seed=7, parent=parent)  # its own model version
    (node,) = image_lineage(image=parent).current.children
    assert [c.field for c in node.changes or []] == ["model"]
    comparison = images_comparison(before_id=parent.pk, after_id=node.pk or 0)
    assert comparison and [r.field for r in comparison.rows if r.changed] == [
        "model",
        "model_digest",
    ]


def test_a_bit_identical_rerun_is_labelled_same_recipe(media_root) -> None:
    parent = ImageFactory(prompt="a fox", seed=7)
    rerun = ImageFactory(prompt="a fox", seed=7, parent=parent, model_version=parent.model_version)
    (node,) = image_lineage(image=parent).current.children
    assert node.pk == rerun.pk and node.changes == []


def test_a_hidden_record_is_a_placeholder_without_its_subtree_for_the_public(
    chain, staff_user, user
) -> None:
    root, child, grandchild, great = chain
    Image.objects.filter(pk=child.pk).update(hidden=True)
    for viewer in (None, user):
        (placeholder,) = image_lineage(image=root, viewer=viewer).current.children
        assert placeholder.pk is None and placeholder.prompt == ""
        assert placeholder.children == [] and placeholder.more == 0
        assert placeholder.changes is None
    # Seen from below, the chain stops at the hidden ancestor, and the record under it has no
    # label (it would tell what the hidden record's recipe was).
    lineage = image_lineage(image=great, viewer=None)
    nodes = _path(lineage.root)
    assert [n.pk for n in nodes] == [None, grandchild.pk, great.pk]
    assert nodes[1].changes is None and nodes[2].changes is not None
    assert not lineage.earlier

    staff = image_lineage(image=root, viewer=staff_user)
    nodes = _path(staff.root)
    assert [n.pk for n in nodes] == [root.pk, child.pk, grandchild.pk, great.pk]
    assert nodes[1].hidden and nodes[1].changes is not None


def test_unfinished_remixes_are_not_in_the_tree(chain) -> None:
    root, child, *_ = chain
    ImageFactory(parent=root, status=Image.Status.PENDING)
    ImageFactory(parent=root, status=Image.Status.FAILED)
    current = image_lineage(image=root).current
    assert [n.pk for n in current.children] == [child.pk] and current.more == 0


def test_breadth_is_bounded_and_the_rest_counted(media_root) -> None:
    parent = ImageFactory()
    remixes = ImageFactory.create_batch(CHILDREN_MAX + 3, parent=parent)
    current = image_lineage(image=parent).current
    assert [n.pk for n in current.children] == [r.pk for r in remixes[:CHILDREN_MAX]]
    assert current.more == 3
    # Seen from a remix, its parent counts the siblings it does not show.
    lineage = image_lineage(image=remixes[0])
    assert lineage.root.pk == parent.pk and lineage.root.more == CHILDREN_MAX + 2


def test_ancestors_are_bounded_and_a_cycle_ends_the_walk(media_root) -> None:
    images = [ImageFactory()]
    for _ in range(ANCESTORS_MAX + 2):
        images.append(ImageFactory(parent=images[-1]))
    lineage = image_lineage(image=images[-1], depth=0)
    assert lineage.ancestors == ANCESTORS_MAX and lineage.earlier
    assert lineage.root.pk == images[-1 - ANCESTORS_MAX].pk

    a = ImageFactory()
    b = ImageFactory(parent=a)
    Image.objects.filter(pk=a.pk).update(parent=b)  # not made by remix; must not hang
    lineage = image_lineage(image=a)
    assert [n.pk for n in _path(lineage.root)] == [b.pk, a.pk]


def test_the_tree_is_one_query_however_big(media_root, django_assert_num_queries) -> None:
    """Depth, breadth and ancestors do not add queries: one recursive CTE with the rows."""
    grandparent = ImageFactory()
    parent = ImageFactory(parent=grandparent)
    record = ImageFactory(parent=parent)
    for child in ImageFactory.create_batch(4, parent=record):
        for grandchild in ImageFactory.create_batch(3, parent=child):
            ImageFactory.create_batch(2, parent=grandchild)
    with django_assert_num_queries(1):
        lineage = image_lineage(image=record)
        assert len(lineage.current.children) == 4
        assert sum(len(c.children) for c in lineage.current.children) == 12
        assert lineage.ancestors == 2


def test_img2img_recipes_compare_by_input_digest_without_more_queries(
    media_root, django_assert_num_queries
) -> None:
    source = SourceImage.objects.create(
        file="sources/a.png", pixel_sha256="c" * 64, kind=SourceImage.Kind.INIT, width=64, height=64
    )
    parent = ImageFactory(mode=Image.Mode.IMG2IMG, init_image=source, strength=0.5)
    ImageFactory(
        mode=Image.Mode.IMG2IMG, init_image=source, strength=0.7, parent=parent,
        prompt=parent.prompt, seed=parent.seed, model_version=parent.model_version,
    )  # fmt: skip
    with django_assert_num_queries(1):
        (node,) = image_lineage(image=parent).current.children
        assert _labels(node) == [("strength", 0.5, 0.7)]


def test_a_comparison_needs_both_records_visible(chain, staff_user) -> None:
    root, child, *_ = chain
    comparison = images_comparison(before_id=root.pk, after_id=child.pk)
    assert comparison is not None and comparison.changed == 1
    assert [row.field for row in comparison.rows if row.changed] == ["prompt"]
    Image.objects.filter(pk=child.pk).update(hidden=True)
    assert images_comparison(before_id=root.pk, after_id=child.pk) is None
    assert images_comparison(before_id=root.pk, after_id=child.pk, viewer=staff_user)
    assert images_comparison(before_id=root.pk, after_id=10**9) is None
