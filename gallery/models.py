"""Curation (staff-made collections of records), favourites and each user's viewing preferences."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from generator.models import Image


class Collection(models.Model):
    """A staff-curated, ordered set of records with a public page when published."""

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True, allow_unicode=True)
    description = models.TextField(blank=True)
    is_public = models.BooleanField(default=False)
    is_featured = models.BooleanField(default=False, help_text="Shown first on the home page")
    position = models.IntegerField(default=0, help_text="Lower comes first")
    cover = models.ForeignKey(
        Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    images = models.ManyToManyField(Image, through="CollectionItem", related_name="collections")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_featured", "position", "title"]

    def __str__(self) -> str:
        return self.title


class CollectionItem(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="collection_items")
    position = models.IntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "image"], name="image_once_per_collection"
            )
        ]

    def __str__(self) -> str:
        return f"{self.collection} #{self.position}: {self.image_id}"


class Favourite(models.Model):
    """A signed-in user's heart on a record. ImageLikes keeps the count per record."""

    # The unique constraint's index (user, image) and favourites_newest serve every lookup by
    # user: no separate index on the column.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favourites",
        db_index=False,
    )  # fmt: skip
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="favourites")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "image"], name="favourite_once_per_user")
        ]
        indexes = [
            # A user's favourites page: newest first, by keyset.
            models.Index(fields=["user", "-created_at", "-id"], name="favourites_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} ♥ {self.image_id}"


class ImageLikes(models.Model):
    """How many users like a record, kept by the favourite services in the same transaction
    as the Favourite row: "most liked" pages read it by index instead of counting every
    favourite of every record on each page. A record nobody liked has no row."""

    image = models.OneToOneField(
        Image, on_delete=models.CASCADE, primary_key=True, related_name="like_count"
    )
    count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            # Most liked first, the newer record first among equals (the keyset's order).
            models.Index(
                fields=["-count", "-image"], name="most_liked", condition=models.Q(count__gt=0)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.image_id}: {self.count}"


class UserPreferences(models.Model):
    """What a signed-in user chose to see. Visitors without an account get the defaults."""

    class Nsfw(models.TextChoices):
        SHOW = "show", _("Show")
        BLUR = "blur", _("Blur (click or tap to reveal)")
        HIDE = "hide", _("Hide")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="seedbank_preferences",
    )
    nsfw = models.CharField(max_length=8, choices=Nsfw.choices, default=Nsfw.BLUR)

    def __str__(self) -> str:
        return f"{self.user_id}: nsfw {self.nsfw}"
