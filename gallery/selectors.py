"""Reads for the gallery: the public grid (keyset pagination), collections, a record's cost,
favourites and likes, and what each viewer chose to see (NSFW)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import Coalesce

from gallery.models import Collection, CollectionItem, Favourite, ImageLikes, UserPreferences
from generator.models import Image
from generator.models.records import ImageQuerySet
from generator.selectors.pages import RecordPage, newest_first_page
from generator.selectors.records import images_public, images_visible_to
from generator.selectors.stats import job_cost_usd


def gallery_page(*, cursor: str | None, page_size: int, hide_nsfw: bool = False) -> RecordPage:
    """The public gallery, newest first, by keyset (generator.selectors.pages), each card
    with its likes (read in the page's own query)."""
    images = _with_likes(images_public().listing().select_related("model_version"))
    if hide_nsfw:
        images = images.filter(nsfw=False)
    return newest_first_page(images=images, cursor=cursor, page_size=page_size)


def collections_with_covers(*, viewer: Any, limit: int) -> list[Collection]:
    """Collections for the home page; a cover the viewer may not see (hidden, not ready) is
    dropped rather than shown."""
    collections = list(collections_visible_to(viewer)[:limit])
    visible = set(
        images_visible_to(viewer)
        .filter(pk__in=[c.cover_id for c in collections if c.cover_id])
        .values_list("pk", flat=True)
    )
    for collection in collections:
        if collection.cover_id not in visible:
            collection.cover = None
    return collections


def collections_visible_to(viewer: Any) -> QuerySet[Collection]:
    collections = Collection.objects.select_related("cover")
    if viewer is not None and getattr(viewer, "is_staff", False):
        return collections
    return collections.filter(is_public=True)


def collection_detail(*, slug: str, viewer: Any = None) -> Collection | None:
    return collections_visible_to(viewer).filter(slug=slug).first()


def collection_images(
    *, collection: Collection, viewer: Any = None, hide_nsfw: bool = False
) -> list[Image]:
    images = images_visible_to(viewer)
    if hide_nsfw:
        images = images.filter(nsfw=False)
    return list(
        _with_likes(images.listing())
        .filter(collection_items__collection=collection)
        .order_by("collection_items__position", "collection_items__id")
    )


def images_with_prompts(*, owner: Any, prompts: Iterable[str]) -> list[Image]:
    """An owner's records with any of these prompts, oldest first, failed ones left out
    (pending ones are kept: the caller may wait for them)."""
    return list(
        Image.objects.filter(owner=owner, prompt__in=list(prompts))
        .exclude(status=Image.Status.FAILED)
        .order_by("pk")
    )


def collection_find(*, collection_id: Any) -> Collection | None:
    return Collection.objects.filter(pk=collection_id).first() if collection_id else None


def collections_all() -> QuerySet[Collection]:
    return Collection.objects.all()


def collection_choices_public() -> list[tuple[str, str]]:
    """(slug, title) of public collections, for the search filter."""
    return list(Collection.objects.filter(is_public=True).values_list("slug", "title"))


def collection_image_ids(*, slug: str) -> QuerySet[CollectionItem, Any]:
    """The ids of a public collection's records, as a subquery for search filters."""
    return CollectionItem.objects.filter(collection__slug=slug, collection__is_public=True).values(
        "image_id"
    )


def image_cost(*, image: Image) -> dict[str, object] | None:
    """This image's share of its job's render time and cost (a batch splits them evenly)."""
    job = image.job
    if job is None or job.render_seconds is None:
        return None
    share = max(1, image.batch_size)
    cost = job_cost_usd(job=job)
    return {
        "seconds": job.render_seconds / share,
        "device": job.device,
        "usd": None if cost is None else cost / share,
    }


# --- what a viewer chose to see --------------------------------------------------------------


def viewer_nsfw_mode(*, viewer: Any) -> str:
    """ "show", "blur" or "hide" (UserPreferences.Nsfw): a signed-in user's choice, "blur" for
    everyone else. Read once per request: kept on the user object, which lives as long as it."""
    if viewer is None or not getattr(viewer, "is_authenticated", False):
        return UserPreferences.Nsfw.BLUR.value
    known = getattr(viewer, "_seedbank_nsfw_mode", None)
    if known is None:
        known = (
            UserPreferences.objects.filter(user_id=viewer.pk).values_list("nsfw", flat=True).first()
            or UserPreferences.Nsfw.BLUR.value
        )
        viewer._seedbank_nsfw_mode = known
    return str(known)


def viewer_hides_nsfw(*, viewer: Any) -> bool:
    return viewer_nsfw_mode(viewer=viewer) == UserPreferences.Nsfw.HIDE


Shown = TypeVar("Shown")


def _itself(item: Any) -> Any:
    return item


def nsfw_left_out(
    items: Iterable[Shown], *, viewer: Any, image_of: Callable[[Shown], Any] = _itself
) -> list[Shown]:
    """`items` less the NSFW records when the viewer hides them (for lists another app
    selects: neighbours, variants, a user's renders). `image_of` finds an item's record."""
    kept = list(items)
    if not viewer_hides_nsfw(viewer=viewer):
        return kept
    return [item for item in kept if not image_of(item).nsfw]


# --- likes and favourites --------------------------------------------------------------------


def _with_likes(images: ImageQuerySet) -> ImageQuerySet:
    """Each row's like count, joined into the same query (a record nobody liked has no row).
    Subqueries built from the annotated set (variants) carry the LEFT JOIN but read none of
    its columns: Postgres removes such a join on a unique key, so they cost what they did."""
    return images.annotate(likes=Coalesce(F("like_count__count"), 0))


def images_likes_mark(*, images: Iterable[Image], viewer: Any) -> None:
    """Set `likes` (when the query did not) and `liked` (whether the viewer likes it) on each
    record shown: at most one query for the counts and one for the viewer's hearts."""
    shown = list(images)
    uncounted = {image.pk for image in shown if getattr(image, "likes", None) is None}
    counts: dict[int, int] = {}
    if uncounted:
        counts = dict(ImageLikes.objects.filter(pk__in=uncounted).values_list("image_id", "count"))
    liked: set[int] = set()
    if shown and viewer is not None and getattr(viewer, "is_authenticated", False):
        liked = set(
            Favourite.objects.filter(user_id=viewer.pk, image_id__in={i.pk for i in shown})
            .values_list("image_id", flat=True)
        )  # fmt: skip
    for image in shown:
        if image.pk in uncounted:
            image.likes = counts.get(image.pk, 0)  # type: ignore[attr-defined]
        image.liked = image.pk in liked  # type: ignore[attr-defined]


def image_likes(*, image: Image, viewer: Any) -> tuple[int, bool]:
    """(how many like the record, whether the viewer does), in one query."""
    mine = Q(user_id=viewer.pk) if getattr(viewer, "is_authenticated", False) else Q(pk=None)
    counted = Favourite.objects.filter(image=image).aggregate(
        likes=Count("pk"), mine=Count("pk", filter=mine)
    )
    return counted["likes"], counted["mine"] > 0


Hit = TypeVar("Hit")


def hits_by_likes(hits: Sequence[Hit]) -> list[Hit]:
    """Search hits (already the relevant ones, ranked) ordered by likes, most first; equal
    likes keep their rank. Sets each hit's image.likes (one query)."""
    images = [hit.image for hit in hits]  # type: ignore[attr-defined]
    images_likes_mark(images=images, viewer=None)
    return sorted(hits, key=lambda hit: -hit.image.likes)  # type: ignore[attr-defined]


def most_liked_page(*, cursor: str | None, page_size: int, hide_nsfw: bool = False) -> RecordPage:
    """The public gallery, most liked first (equal counts: newer first), by keyset; records
    nobody likes follow, newest first, as in the gallery. A cursor "L<likes>~<id>" continues
    the liked records, "N<newest cursor>" the rest."""
    public = images_public().listing().select_related("model_version")
    if hide_nsfw:
        public = public.filter(nsfw=False)
    if cursor and cursor.startswith("N"):
        return _unliked_page(public, cursor=cursor[1:] or None, page_size=page_size)
    liked = (
        public.filter(like_count__count__gt=0)
        .annotate(likes=F("like_count__count"))
        .order_by("-likes", "-id")
    )
    position = _liked_position(cursor) if cursor else None
    if position is not None:
        likes, pk = position
        liked = liked.filter(Q(likes__lt=likes) | Q(likes=likes, id__lt=pk))
    rows: list[Image] = list(liked[: page_size + 1])
    if len(rows) > page_size:
        last = rows[page_size - 1]
        return RecordPage(images=rows[:page_size], next_cursor=f"L{last.likes}~{last.pk}")  # type: ignore[attr-defined]
    if len(rows) == page_size:
        return RecordPage(images=rows, next_cursor="N")
    rest = _unliked_page(public, cursor=None, page_size=page_size - len(rows))
    return RecordPage(images=rows + rest.images, next_cursor=rest.next_cursor)


def _unliked_page(public: ImageQuerySet, *, cursor: str | None, page_size: int) -> RecordPage:
    unliked = _with_likes(public.filter(Q(like_count__isnull=True) | Q(like_count__count=0)))
    page = newest_first_page(images=unliked, cursor=cursor, page_size=page_size)
    return RecordPage(
        images=page.images, next_cursor=f"N{page.next_cursor}" if page.next_cursor else None
    )


def _liked_position(cursor: str) -> tuple[int, int] | None:
    try:
        likes, pk = (int(part) for part in cursor.removeprefix("L").split("~", 1))
    except ValueError:
        return None
    if not (0 < likes < 2**31 and 0 < pk < 2**63):
        return None
    return likes, pk


def favourites_page(
    *, user: Any, cursor: str | None, page_size: int, hide_nsfw: bool = False
) -> RecordPage:
    """The records a user liked that they may still see, last liked first, by keyset on the
    favourite (when, id)."""
    images = (
        _with_likes(images_visible_to(user).listing().select_related("model_version"))
        .filter(favourites__user=user)
        .annotate(liked_at=F("favourites__created_at"), favourite_id=F("favourites__id"))
        .order_by("-liked_at", "-favourite_id")
    )
    if hide_nsfw:
        images = images.filter(nsfw=False)
    position = _favourite_position(cursor) if cursor else None
    if position is not None:
        liked_at, pk = position
        images = images.filter(Q(liked_at__lt=liked_at) | Q(liked_at=liked_at, favourite_id__lt=pk))
    rows: list[Image] = list(images[: page_size + 1])
    for row in rows:
        row.liked = True  # type: ignore[attr-defined]
    if len(rows) <= page_size:
        return RecordPage(images=rows, next_cursor=None)
    last = rows[page_size - 1]
    following = f"{last.liked_at.isoformat()}~{last.favourite_id}"  # type: ignore[attr-defined]
    return RecordPage(images=rows[:page_size], next_cursor=following)


def _favourite_position(cursor: str) -> tuple[datetime, int] | None:
    try:
        stamp, pk = cursor.rsplit("~", 1)
        moment, number = datetime.fromisoformat(stamp), int(pk)
    except ValueError:
        return None
    if moment.tzinfo is None or not 0 < number < 2**63:
        return None
    return moment, number
