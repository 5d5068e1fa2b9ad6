"""Reads for a record's lineage: its remix ancestors and descendants as one tree, each edge
labelled with what the remix changed (engine.recipe_diff).

The whole neighbourhood is one query: a recursive CTE walks up the parent chain and down the
remixes (a bounded number of children per record, a bounded depth), and the ORM loads those
rows' recipe columns with a count of each one's finished remixes. Visibility follows the record
page's rule (records.image_visible_to): a record the viewer may not open is a placeholder with
no prompt, no link and no label, and nothing beyond it is walked (its subtree, or the chain
above it, would tell what it is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from engine.recipe import recipe_fields
from engine.recipe_diff import Change, Row, recipe_changes, recipe_rows
from generator.models import Image
from generator.selectors.records import image_visible_to, images_visible_to

ANCESTORS_MAX = 20
DEPTH_DEFAULT = 3
DEPTH_MAX = 6
CHILDREN_MAX = 24  # remixes shown under one record; the rest are counted ("+k more")
# A popular record can have thousands of descendants three levels down; the page shows the
# nearest ones (breadth first) and counts the rest.
DESCENDANTS_MAX = 200


@dataclass
class LineageNode:
    """One record in the tree. `pk` is None for a record the viewer may not open."""

    pk: int | None
    prompt: str = ""
    thumb: str = ""  # its small picture's address ("" when it has none)
    hidden: bool = False  # hidden by moderation, and shown because the viewer is staff
    current: bool = False
    # What changed from the parent; None where there is no visible parent to compare with.
    changes: list[Change] | None = None
    parent_pk: int | None = None  # the parent compared with, for a link to the diff page
    children: list[LineageNode] = field(default_factory=list)
    more: int = 0  # finished remixes of this record that the tree does not show

    @property
    def public(self) -> bool:
        return self.pk is not None


@dataclass
class Lineage:
    """The tree from the oldest ancestor shown down to the current record's descendants."""

    root: LineageNode
    current: LineageNode
    ancestors: int  # ancestors shown above the current record
    earlier: bool  # the chain goes on above the root (longer than ANCESTORS_MAX)

    @property
    def is_original(self) -> bool:
        """Not a remix of anything (a record whose parent is not public still is one)."""
        return self.ancestors == 0


def image_lineage(*, image: Image, viewer: Any = None, depth: int = DEPTH_DEFAULT) -> Lineage:
    """`image`'s ancestors (root first) and its descendants `depth` levels down, in one query.

    `image` must be one the viewer may see (the record page has checked)."""
    depth = max(0, min(depth, DEPTH_MAX))
    staff = viewer is not None and bool(getattr(viewer, "is_staff", False))
    rows = {row.pk: row for row in _neighbourhood(image_id=image.pk, staff=staff, depth=depth)}
    if image.pk not in rows:  # deleted or unfinished since the page loaded it
        rows[image.pk] = image
    portable: dict[int, dict[str, Any]] = {}

    def node(row: Image, parent: Image | None) -> LineageNode:
        if not image_visible_to(row, viewer):
            return LineageNode(pk=None)
        made = LineageNode(pk=row.pk, prompt=row.prompt, thumb=row.grid_src, hidden=row.hidden)
        made.more = getattr(row, "ready_children", 0)
        if parent is not None and image_visible_to(parent, viewer):
            changes = recipe_changes(_portable(parent, portable), _portable(row, portable))
            # A new model's digest is new too: the label names the model once (the diff page
            # shows both).
            if any(change.field == "model" for change in changes):
                changes = [change for change in changes if change.field != "model_digest"]
            made.changes = changes
            made.parent_pk = parent.pk
        return made

    # Up: the parent chain, stopping at the first record the viewer may not see.
    chain: list[Image] = []
    seen = {image.pk}
    top = rows[image.pk]
    while (
        top.parent_id is not None
        and top.parent_id in rows
        and top.parent_id not in seen
        and len(chain) < ANCESTORS_MAX
        and (top is rows[image.pk] or image_visible_to(top, viewer))
    ):
        top = rows[top.parent_id]
        seen.add(top.pk)
        chain.append(top)
    earlier = top.parent_id is not None and image_visible_to(top, viewer)

    # Down: the current record's remixes, level by level.
    children_of: dict[int, list[Image]] = {}
    for row in sorted(rows.values(), key=lambda r: (r.created_at, r.pk)):
        if row.parent_id is not None:
            children_of.setdefault(row.parent_id, []).append(row)
    current = node(rows[image.pk], chain[0] if chain else None)
    current.current = True
    level = [(current, rows[image.pk])]
    for _ in range(depth):
        following = []
        for parent_node, parent_row in level:
            if not parent_node.public:
                continue
            for child in children_of.get(parent_row.pk, []):
                if child.pk in seen:
                    continue
                seen.add(child.pk)
                child_node = node(child, parent_row)
                parent_node.children.append(child_node)
                following.append((child_node, child))
        level = following
    _count_unshown(current)

    # Ancestors wrap the current record, oldest outermost; each also counts its other remixes.
    root = current
    for index, row in enumerate(chain):
        above = chain[index + 1] if index + 1 < len(chain) else None
        ancestor = node(row, above)
        ancestor.children = [root]
        if ancestor.public:  # its other remixes are the current record's siblings, not shown
            ancestor.more = max(0, ancestor.more - 1)
        root = ancestor
    return Lineage(root=root, current=current, ancestors=len(chain), earlier=earlier)


def _count_unshown(node: LineageNode) -> None:
    """`more` was the number of finished remixes; make it those the tree leaves out."""
    for child in node.children:
        _count_unshown(child)
    node.more = max(0, node.more - len(node.children)) if node.public else 0


def _portable(row: Image, cache: dict[int, dict[str, Any]]) -> dict[str, Any]:
    if row.pk not in cache:
        cache[row.pk] = row.recipe_portable()
    return cache[row.pk]


@dataclass
class Comparison:
    """Two records side by side: every recipe field of either, with what changed."""

    before: Image
    after: Image
    rows: list[Row]

    @property
    def changed(self) -> int:
        return sum(row.changed for row in self.rows)


def images_comparison(*, before_id: int, after_id: int, viewer: Any = None) -> Comparison | None:
    """Both records' recipes compared (one query); None unless the viewer may see both."""
    found = {
        image.pk: image
        for image in images_visible_to(viewer)
        .listing()
        .select_related("init_image", "mask")
        .filter(pk__in=[before_id, after_id])
    }
    if before_id not in found or after_id not in found:
        return None
    before, after = found[before_id], found[after_id]
    return Comparison(
        before=before,
        after=after,
        rows=recipe_rows(before.recipe_portable(), after.recipe_portable()),
    )


# Up to ANCESTORS_MAX parents (cycle-safe: a path array), and down to the given depth at most
# CHILDREN_MAX finished remixes per record, oldest first. Neither walk goes past a record the
# viewer may not see (the start row is the record the viewer is on).
_NEIGHBOURHOOD_SQL = """
WITH RECURSIVE up (id, parent_id, hidden, status, steps, path) AS (
    SELECT id, parent_id, hidden, status, 0, ARRAY[id] FROM {table} WHERE id = %s
  UNION ALL
    SELECT p.id, p.parent_id, p.hidden, p.status, up.steps + 1, up.path || p.id
    FROM up JOIN {table} p ON p.id = up.parent_id
    WHERE up.steps < %s AND NOT p.id = ANY(up.path)
      AND (up.steps = 0 OR (up.status = %s AND (%s OR NOT up.hidden)))
), down (id, hidden, depth) AS (
    SELECT id, hidden, 0 FROM {table} WHERE id = %s
  UNION ALL
    SELECT c.id, c.hidden, down.depth + 1
    FROM down CROSS JOIN LATERAL (
        SELECT child.id, child.hidden FROM {table} child
        WHERE child.parent_id = down.id AND child.status = %s
        ORDER BY child.created_at, child.id
        LIMIT %s
    ) c
    WHERE down.depth < %s AND (down.depth = 0 OR %s OR NOT down.hidden)
)
SELECT id FROM up
UNION
SELECT id FROM (SELECT id FROM down ORDER BY depth, id LIMIT %s) nearest
"""


# Besides the recipe's own fields: what recipe_portable() and the tree read (the pictures for
# each node's thumbnail).
_COLUMNS = (
    "model_name", "model_digest", "batch_index", "parent", "hidden", "status", "created_at",
    "thumbnail", "image_file",
)  # fmt: skip


def _neighbourhood(*, image_id: int, staff: bool, depth: int) -> list[Image]:
    ready = Image.Status.READY.value
    ids = RawSQL(
        _NEIGHBOURHOOD_SQL.format(table=Image._meta.db_table),
        (image_id, ANCESTORS_MAX, ready, staff,
         image_id, ready, CHILDREN_MAX, depth, staff, DESCENDANTS_MAX + 1),
    )  # fmt: skip
    remixes = (
        Image.objects.filter(parent=OuterRef("pk"), status=Image.Status.READY)
        .order_by()
        .values("parent")
        .annotate(count=Count("pk"))
        .values("count")
    )
    # Every recipe column: a deferred one would silently read as the recipe's default
    # (Image.recipe() builds the recipe from the attributes that are loaded).
    recipe_columns = [f.name.removesuffix("_id") for f in recipe_fields()]
    return list(
        Image.objects.filter(pk__in=ids)
        .select_related("init_image", "mask")
        .only(*recipe_columns, *_COLUMNS, "init_image__pixel_sha256", "mask__pixel_sha256")
        .annotate(ready_children=Coalesce(Subquery(remixes), 0, output_field=IntegerField()))
    )
