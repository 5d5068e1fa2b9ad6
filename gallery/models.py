from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models

from generator.models import ModelVersion, RenderJob
from generator.recipes import Recipe


class SourceImage(models.Model):
    """An uploaded init image or inpainting mask, stored once by the sha256 of its pixels."""

    class Kind(models.TextChoices):
        INIT = "init"
        MASK = "mask"

    pixel_sha256 = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    file = models.FileField(upload_to="sources/")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pixel_sha256", "kind"], name="source_once_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.pixel_sha256[:12]}"


class Image(models.Model):
    """A recipe and what it produced: the pixels, their digest and the environment."""

    class Status(models.TextChoices):
        PENDING = "pending"
        READY = "ready"
        FAILED = "failed"

    class Mode(models.TextChoices):
        TXT2IMG = "txt2img", "text to image"
        IMG2IMG = "img2img", "image to image"
        INPAINT = "inpaint", "inpainting"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    job = models.ForeignKey(
        RenderJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="images"
    )
    # Remix lineage: a child is an edited rerun of its parent.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )

    # --- the recipe ---
    model_version = models.ForeignKey(
        ModelVersion, null=True, on_delete=models.SET_NULL, related_name="images"
    )
    # Snapshot of the model identity, so a record stays explainable if the model goes away.
    model_name = models.CharField(max_length=300)
    model_digest = models.CharField(max_length=64)
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.TXT2IMG)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    seed = models.BigIntegerField()
    scheduler = models.CharField(max_length=40)
    steps = models.PositiveSmallIntegerField()
    guidance = models.FloatField()
    width = models.PositiveSmallIntegerField()
    height = models.PositiveSmallIntegerField()
    precision = models.CharField(max_length=8, default="fp32")
    batch_size = models.PositiveSmallIntegerField(default=1)
    batch_index = models.PositiveSmallIntegerField(default=0)
    # img2img / inpainting inputs: how far from the init image to go, and what to repaint.
    init_image = models.ForeignKey(
        SourceImage, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    mask = models.ForeignKey(
        SourceImage, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    strength = models.FloatField(null=True, blank=True)

    # --- the outcome ---
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    image_file = models.FileField(upload_to="images/", blank=True)
    # Eviction drops the full image once its recipe has been verified bit-identical; the
    # thumbnail stays for the grid and the pixels come back on demand (gallery.services).
    thumbnail = models.FileField(upload_to="thumbnails/", blank=True)
    evicted_at = models.DateTimeField(null=True, blank=True)
    pixel_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    environment = models.JSONField(default=dict, blank=True)
    # Moderation: hidden records vanish for everyone but staff; NSFW ones are blurred and
    # filterable; featured ones are staff picks.
    hidden = models.BooleanField(default=False)
    nsfw = models.BooleanField(default=False)
    featured = models.BooleanField(default=False)
    # Full-text over prompt (weight A) and negative prompt (D); see search/keywords.py.
    search_vector = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            GinIndex(fields=["search_vector"], name="image_search_vector_gin"),
            # Keyset pagination of the public gallery: newest ready images first.
            models.Index(
                fields=["-created_at", "-id"],
                name="gallery_ready_newest",
                condition=models.Q(status="ready", hidden=False),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.prompt[:40]}"

    @property
    def display_url(self) -> str:
        """The full image when it is stored, else its thumbnail (an evicted record)."""
        if self.image_file:
            return str(self.image_file.url)
        return str(self.thumbnail.url) if self.thumbnail else ""

    @property
    def batch_seeds(self) -> list[int]:
        """Seeds of the batch this image was rendered in: a batch gets seed, seed+1, ..."""
        first = self.seed - self.batch_index
        return [first + index for index in range(self.batch_size)]

    def recipe(self) -> Recipe:
        return Recipe(
            model_version_id=self.model_version_id,
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            seed=self.seed,
            scheduler=self.scheduler,
            steps=self.steps,
            guidance=self.guidance,
            width=self.width,
            height=self.height,
            precision=self.precision,
            mode=self.mode,
            batch_size=1,
            init_image_id=self.init_image_id,
            mask_id=self.mask_id,
            strength=self.strength,
        )


class Reproduction(models.Model):
    """A re-render of an image's stored recipe and how its pixels compare with the original.

    A check re-renders the image's whole batch by default (batch position moves pixels); a
    check "alone" renders just the one seed, to show what batching changes. A restore is a
    check that, when bit-identical, puts the pixels of an evicted record back.
    """

    class Purpose(models.TextChoices):
        CHECK = "check"
        RESTORE = "restore"

    class Verdict(models.TextChoices):
        PENDING = "pending"
        BIT_IDENTICAL = "bit-identical"
        VISUALLY_IDENTICAL = "visually-identical"
        DIFFERS = "differs"
        FAILED = "failed"

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="reproductions")
    job = models.OneToOneField(RenderJob, on_delete=models.CASCADE, related_name="reproduction")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.CHECK)
    whole_batch = models.BooleanField(default=True)
    verdict = models.CharField(max_length=30, choices=Verdict.choices, default=Verdict.PENDING)
    image_file = models.FileField(upload_to="reproductions/", blank=True)
    pixel_sha256 = models.CharField(max_length=64, blank=True)
    max_abs_diff = models.PositiveSmallIntegerField(null=True, blank=True)
    psnr = models.FloatField(null=True, blank=True)
    environment = models.JSONField(default=dict, blank=True)
    # Keys whose values differ between the original's environment and this one.
    environment_diff = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"reproduction of #{self.image_id}: {self.verdict}"


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
