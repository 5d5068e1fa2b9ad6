"""Writes for the gallery: remix (rerun or edit), collections, moderation, favourites and
viewing preferences."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Max, QuerySet

from engine.recipe import Recipe
from gallery.models import Collection, CollectionItem, Favourite, ImageLikes, UserPreferences
from generator.models import Image, RenderJob
from generator.selectors.model_versions import ModelUnavailable, model_version_check
from generator.selectors.recipes import recipe_validate
from generator.selectors.resources import recipe_embeddings_pin
from generator.services.render_jobs import render_job_create
from generator.services.reproductions import reproduction_create

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def remix_submit(*, owner: User, parent: Image, recipe: Recipe) -> RenderJob:
    """Rerun the parent when nothing that affects pixels changed; else render an edited child."""
    # The form's recipe names no embeddings; the parent's were pinned from the same words.
    recipe = recipe_embeddings_pin(recipe=recipe)
    if recipe.model_version_id == parent.model_version_id:
        try:
            model_version_check(image=parent, verify_files=False)
        except ModelUnavailable as exc:
            raise ValidationError(str(exc)) from exc
    if recipe.batch_size == 1 and recipe.seed is not None:
        recipe_validate(recipe=recipe, user=owner)
        if recipe.pixel_key() == parent.recipe().pixel_key():
            return reproduction_create(image=parent, requested_by=owner).job
    return render_job_create(owner=owner, recipe=recipe, parent=parent)


def staff_user_ensure(*, username: str, password: str) -> User:
    """The staff account of that name; created (with this password) when it does not exist."""
    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"is_staff": True, "is_superuser": True}
    )
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user  # type: ignore[return-value]


def _require_staff(actor: User | None) -> None:
    # Enforced here, not only by the admin: every caller of curation goes through these checks.
    if actor is None or not actor.is_staff:
        raise PermissionDenied("Only staff can curate the gallery.")


def collection_add_images(*, actor: User, collection: Collection, images: Iterable[Image]) -> int:
    """Append records to a collection (after its current last position); returns how many."""
    _require_staff(actor)
    with transaction.atomic():
        last = collection.items.aggregate(last=Max("position"))["last"]
        position = -1 if last is None else last
        existing = set(collection.items.values_list("image_id", flat=True))
        added = 0
        for image in images:
            if image.pk in existing:
                continue
            position += 1
            CollectionItem.objects.create(collection=collection, image=image, position=position)
            existing.add(image.pk)
            added += 1
        if collection.cover_id is None and existing:
            collection.cover_id = collection.items.first().image_id  # type: ignore[union-attr]
            collection.save(update_fields=["cover"])
    return added


def collection_ensure(
    *,
    actor: User,
    slug: str,
    title: str,
    images: Iterable[Image],
    description: str = "",
    public: bool = True,
    featured: bool = False,
    position: int = 0,
) -> tuple[Collection, bool]:
    """The collection with this slug, created with these records when there is none (True
    then). One that exists is left as it is: its title, records and flags may be staff edits,
    and running the caller again (seed_demo on every `make run`) must add nothing."""
    _require_staff(actor)
    with transaction.atomic():
        collection, created = Collection.objects.get_or_create(
            slug=slug,
            defaults={
                "title": title,
                "description": description,
                "is_public": public,
                "is_featured": featured,
                "position": position,
                "created_by": actor,
            },
        )
        if created:
            collection_add_images(actor=actor, collection=collection, images=images)
    return collection, created


def images_moderate(
    *,
    actor: User,
    images: QuerySet[Image],
    hidden: bool | None = None,
    nsfw: bool | None = None,
    featured: bool | None = None,
) -> int:
    """Set moderation flags on records; returns how many rows changed."""
    _require_staff(actor)
    changes = {
        name: value
        for name, value in (("hidden", hidden), ("nsfw", nsfw), ("featured", featured))
        if value is not None
    }
    return images.update(**changes) if changes else 0


def favourite_add(*, user: User, image: Image) -> bool:
    """The user likes the record; True when they did not already. Liking twice (two tabs, a
    retried request) stays one like: the unique constraint decides, and only the request
    that created the row counts it."""
    with transaction.atomic():
        _favourite, created = Favourite.objects.get_or_create(user=user, image=image)
        if created:
            ImageLikes.objects.get_or_create(image=image)
            # An UPDATE of the row, so concurrent likes of one record wait for each other.
            ImageLikes.objects.filter(pk=image.pk).update(count=F("count") + 1)
    return created


def favourite_remove(*, user: User, image: Image) -> bool:
    """The user no longer likes the record; True when they did."""
    with transaction.atomic():
        deleted, _ = Favourite.objects.filter(user=user, image=image).delete()
        if deleted:
            ImageLikes.objects.filter(pk=image.pk, count__gt=0).update(count=F("count") - 1)
    return bool(deleted)


def favourite_toggle(*, user: User, image: Image) -> bool:
    """Like the record, or stop liking it when the user already does; True: liked now."""
    if favourite_remove(user=user, image=image):
        return False
    favourite_add(user=user, image=image)
    return True


def preferences_set(*, user: User, nsfw: str) -> UserPreferences:
    """Store what the user chose to see (UserPreferences.Nsfw)."""
    if nsfw not in UserPreferences.Nsfw.values:
        raise ValidationError({"nsfw": f"Choose one of {', '.join(UserPreferences.Nsfw.values)}."})
    preferences, _created = UserPreferences.objects.update_or_create(
        user=user, defaults={"nsfw": nsfw}
    )
    user._seedbank_nsfw_mode = nsfw  # type: ignore[attr-defined]  # gallery.selectors' memo
    return preferences
