"""Records: a recipe and what it produced (pixels, digest, environment), and the init images
and masks that img2img and inpainting recipes point at."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import F, JSONField, Value
from django.db.models.functions import MD5, Cast, Concat
from django.utils.translation import gettext_lazy
from pgvector.django import BitField

from engine.recipe import MODE_LABELS, Recipe, recipe_fields
from engine.search_query import CHINESE_CHARACTERS
from engine.thumbnails import GRID_WIDTHS
from generator.models.jobs import RenderJob
from generator.models.model_versions import ModelVersion


class SourceImage(models.Model):
    """An uploaded init image or inpainting mask, stored once by the sha256 of its pixels."""

    class Kind(models.TextChoices):
        INIT = "init"
        MASK = "mask"

    pixel_sha256 = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Uploads belong to whoever uploaded them: others may use a source only through a record
    # they can see (a remix keeps its parent's init image). Blank: made by the system.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    file = models.FileField(upload_to="sources/")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "pixel_sha256", "kind"], name="source_once_per_owner_and_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.pixel_sha256[:12]}"


_PUBLIC = models.Q(status="ready", hidden=False)  # generator.selectors.records.images_public

# Variants: records whose recipes differ only in the seed (a batch of 4 has seeds s..s+3, a
# seed sweep any seeds) are one group in the grids and results. Left out of the key: the seed,
# and the batch size and position, which only say how the seeds were rendered (a batch of 4
# and four single renders of the same seeds are the same recipe to a reader). Model identity
# by name and digest, since imported records may have no model version here.
VARIANT_KEY_IGNORES = frozenset({"seed", "batch_size"})
_VARIANT_COLUMNS = (
    "model_name",
    "model_digest",
    *(f.name for f in recipe_fields() if f.name not in VARIANT_KEY_IGNORES),
)


def _variant_key_expression() -> MD5:
    """md5 of the recipe columns but the seed, computed by Postgres as a stored generated
    column: every way a row is written (bulk_create, an import, the benchmarks' INSERT ...
    SELECT, raw SQL) gets it, and adding the column fills the existing rows in one table
    rewrite. Each piece is an immutable cast to text (a generated column needs immutable SQL;
    concat_ws is only stable), joined by a unit separator so neighbouring values cannot run
    together. md5 is no security boundary here, just a short, well-spread grouping key."""
    parts: list[Any] = []
    for column in _VARIANT_COLUMNS:
        if parts:
            parts.append(Value("\x1f"))
        parts.append(Cast(F(column), models.TextField()))
    return MD5(Concat(*parts, output_field=models.TextField()))


class LoraHeads(models.Func):
    """The first LORA_HEAD_LENGTH hex digits of each LoRA's sha256 in a recipe's `loras`
    (SQL: seedbank_lora_heads, migration generator 0020): a GIN index over them finds the
    records using a LoRA named by a prefix of its digest (lora:<6+ hex digits>), which no
    index on the JSON itself serves."""

    function = "seedbank_lora_heads"
    output_field = ArrayField(models.TextField())


LORA_HEAD_LENGTH = 6  # the shortest sha256 prefix the search box's lora: accepts


class ImageQuerySet(models.QuerySet["Image"]):
    def listing(self) -> ImageQuerySet:
        """Rows for grids and result lists: without the text-search vector, which no grid shows
        (the environment is not in this table at all: ImageEnvironment)."""
        return self.defer("search_vector", "sketch")


class Image(models.Model):
    """A recipe and what it produced: the pixels, their digest and the environment."""

    class Status(models.TextChoices):
        PENDING = "pending"
        READY = "ready"
        FAILED = "failed"

    # The modes and their labels are the recipe type's (engine.recipe: English, marked for the
    # catalogue), shown in the reader's language like every other choice label.
    Mode = models.TextChoices(  # type: ignore[call-overload]  # stubs lack the functional form
        "Mode", [(mode.upper(), (mode, gettext_lazy(label))) for mode, label in MODE_LABELS.items()]
    )

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
    # Resources by file sha256 (engine.recipe.LoraUse / ResourceUse as JSON, with their names).
    # Database defaults too: rows written by COPY or raw SQL that predate these fields (the
    # benchmarks' archive, older exports) get the recipe's defaults, not NULLs.
    loras = models.JSONField(default=list, db_default=Value([], JSONField()), blank=True)
    embeddings = models.JSONField(default=list, db_default=Value([], JSONField()), blank=True)
    vae = models.JSONField(null=True, blank=True)
    prompt_weighting = models.CharField(max_length=60, blank=True, default="", db_default="")
    clip_skip = models.PositiveSmallIntegerField(default=1, db_default=1)
    hires = models.JSONField(null=True, blank=True)
    # SDXL only (engine.recipe: the defaults are what every other family renders with), with
    # database defaults like the fields above, for rows written by COPY or raw SQL.
    prompt_2 = models.TextField(blank=True, default="", db_default="")
    negative_prompt_2 = models.TextField(blank=True, default="", db_default="")
    # Size and crop conditioning; 0 for a size: the size rendered.
    original_width = models.PositiveIntegerField(default=0, db_default=0)
    original_height = models.PositiveIntegerField(default=0, db_default=0)
    crop_top = models.PositiveIntegerField(default=0, db_default=0)
    crop_left = models.PositiveIntegerField(default=0, db_default=0)
    target_width = models.PositiveIntegerField(default=0, db_default=0)
    target_height = models.PositiveIntegerField(default=0, db_default=0)
    # The refiner model by its weights digest (ModelVersion.weights_digest), "" for none.
    refiner = models.CharField(max_length=64, blank=True, default="", db_default="")
    refiner_switch_at = models.FloatField(null=True, blank=True)

    # --- the outcome ---
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    image_file = models.FileField(upload_to="images/", blank=True)
    # Grid previews (engine.thumbnails): WebP at the two grid widths, written with the pixels.
    # Eviction drops the full image once its recipe has been verified bit-identical; the
    # previews stay for the grid and the pixels come back on demand (a restore reproduction).
    thumbnail = models.FileField(upload_to="thumbnails/", blank=True)
    # Empty when the picture is no wider than the small preview (it would be the same file).
    thumbnail_large = models.FileField(upload_to="thumbnails/", blank=True)
    evicted_at = models.DateTimeField(null=True, blank=True)
    pixel_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    # Moderation: hidden records vanish for everyone but staff; NSFW ones are blurred and
    # filterable; featured ones are staff picks.
    hidden = models.BooleanField(default=False)
    nsfw = models.BooleanField(default=False)
    featured = models.BooleanField(default=False)
    # Whether this record's latest finished reproduction came out bit-identical (what its page
    # shows and eviction requires): kept by a trigger on the reproductions (migrations
    # generator 0021, 0023) whichever way they are written, so that the
    # search box's verified: is a column of the record with its own sketch index, not a probe
    # into the reproductions per record (verified:true at 1M records, 10,000 verified: 83 ms).
    verified = models.BooleanField(default=False, db_default=False, editable=False)
    # Full-text over prompt (weight A) and negative prompt (D): generator.services.records.
    search_vector = SearchVectorField(null=True, editable=False)
    # The signs of the record's vector under the active CLIP model, one bit per dimension
    # (pgvector's binary_quantize; 64 bytes), written by search (search.services.sketches).
    # Kept on this row and INCLUDEd in the partial filter indexes below: a rare filter reads
    # its records' sketches in one index-only range scan and ranks them by Hamming distance,
    # then re-ranks the nearest few by cosine (search.selectors.vector). Kept apart from the
    # filter's rows, each sketch cost an index probe: as slow as the graph walk it replaced.
    sketch = BitField(length=512, null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The same recipe but the seed (see _variant_key_expression): grids and results show one
    # card per key, the record page lists the others (generator.selectors.variants).
    variant_key = models.GeneratedField(
        expression=_variant_key_expression(),
        output_field=models.CharField(max_length=32),
        db_persist=True,
    )

    objects = ImageQuerySet.as_manager()
    # How many records share this one's variant key, set by the selectors that show it as a
    # group's card (generator.selectors.variants.variants_counted); 1 otherwise.
    variants = 1

    class Meta:
        indexes = [
            GinIndex(fields=["search_vector"], name="image_search_vector_gin"),
            # Keyset pagination of the public gallery: newest ready images first.
            models.Index(
                fields=["-created_at", "-id"],
                name="gallery_ready_newest",
                condition=_PUBLIC,
            ),
            # Search filters (search.selectors.SearchFilters) over public records: a selective
            # filter finds its rows here instead of scanning the table, and filtered vector
            # search counts them (exact or HNSW) without a scan. NSFW records are the rare side.
            # Each also carries the id and the sketch, so a filtered vector search reads
            # nothing else (an index-only scan). steps, guidance and owner: the search box's
            # filters (engine.search_query).
            *(
                models.Index(
                    fields=[column],
                    name=f"public_by_{column}",
                    condition=_PUBLIC,
                    include=["id", "sketch"],
                )
                for column in (
                    "model_name",
                    "scheduler",
                    "width",
                    "height",
                    "seed",
                    "steps",
                    "guidance",
                    "owner",
                )
            ),
            models.Index(
                fields=["-created_at"],
                name="public_nsfw",
                condition=_PUBLIC & models.Q(nsfw=True),
                include=["id", "sketch"],
            ),
            models.Index(
                fields=["-created_at"],
                name="public_verified",
                condition=_PUBLIC & models.Q(verified=True),
                include=["id", "sketch"],
            ),
            # The search box's lang:zh (a prompt with Chinese characters), lora:NAME and
            # lora:<sha256 prefix>: without these, counting or ranking any of these filters'
            # records read the whole table (1.2 s, 0.9 s and 0.9 s per search at 1M records).
            models.Index(
                fields=["-created_at"],
                name="public_chinese",
                condition=_PUBLIC & models.Q(prompt__regex=CHINESE_CHARACTERS),
                include=["id", "sketch"],
            ),
            GinIndex(
                fields=["loras"],
                name="public_loras",
                condition=_PUBLIC,
                opclasses=["jsonb_path_ops"],
            ),
            GinIndex(LoraHeads(F("loras")), name="public_lora_heads", condition=_PUBLIC),
            # A group's members, newest first: "is there a newer member?" for the keyset grids
            # and the counts and lists of variants. Not partial: a user's own page sees hidden
            # records too.
            models.Index(fields=["variant_key", "-created_at", "-id"], name="image_variants"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.prompt[:40]}"

    @property
    def environment(self) -> dict[str, Any]:
        """What rendered this record ({} until it is rendered): one row of ImageEnvironment,
        read on demand (image_detail joins it in with select_related)."""
        try:
            return self.environment_record.data  # type: ignore[no-any-return]
        except ImageEnvironment.DoesNotExist:
            return {}

    @property
    def display_url(self) -> str:
        """The full image when it is stored, else its thumbnail (an evicted record)."""
        if self.image_file:
            return str(self.image_file.url)
        return str(self.thumbnail.url) if self.thumbnail else ""

    @property
    def grid_src(self) -> str:
        """What a grid shows where srcset is not understood: the small preview if there is one."""
        return str(self.thumbnail.url) if self.thumbnail else self.display_url

    @property
    def output_width(self) -> int:
        """The stored picture's width: the recipe's, or a hires pass's final one."""
        return self._output_size()[0]

    @property
    def output_height(self) -> int:
        return self._output_size()[1]

    def _output_size(self) -> tuple[int, int]:
        if not self.hires:
            return self.width, self.height
        return self.recipe().hires.size(self.width, self.height)  # type: ignore[union-attr]

    @property
    def grid_srcset(self) -> str:
        """`srcset` candidates by intrinsic width: the previews, then the stored full image."""
        candidates: list[tuple[str, int]] = []
        if self.thumbnail:
            candidates.append((str(self.thumbnail.url), min(self.output_width, GRID_WIDTHS[0])))
        if self.thumbnail_large:
            candidates.append(
                (str(self.thumbnail_large.url), min(self.output_width, GRID_WIDTHS[1]))
            )
        if self.image_file and (not candidates or self.output_width > candidates[-1][1]):
            candidates.append((str(self.image_file.url), self.output_width))
        return ", ".join(f"{url} {width}w" for url, width in candidates)

    @property
    def batch_seeds(self) -> list[int]:
        """Seeds of the batch this image was rendered in: a batch gets seed, seed+1, ..."""
        first = self.seed - self.batch_index
        return [first + index for index in range(self.batch_size)]

    def recipe(self) -> Recipe:
        """This record's recipe, one image of it: columns are named like the recipe's fields."""
        return replace(Recipe.from_values(vars(self)), batch_size=1)

    def recipe_portable(self) -> dict[str, Any]:
        """The recipe as it means the same in any archive: model and inputs by digest, plus the
        batch this image was rendered in (batch position moves pixels)."""
        portable: dict[str, Any] = {"model": self.model_name, "model_digest": self.model_digest}
        portable.update(self.recipe().portable())
        portable.update(batch_size=self.batch_size, batch_index=self.batch_index)
        if self.mode == self.Mode.TXT2IMG:
            portable.pop("strength")
        else:
            portable["init_image_sha256"] = (
                self.init_image.pixel_sha256 if self.init_image else None
            )
            portable["mask_sha256"] = self.mask.pixel_sha256 if self.mask else None
        return portable


class ImageEnvironment(models.Model):
    """Everything besides the recipe that moved a record's pixels (library versions, device,
    scheduler config, batch): about 1.4 KB of JSON, shown on one page only.

    It has its own table so that the image table's rows stay narrow: in the image row it was
    ~90 % of the bytes, and every scan, bitmap heap visit and cached page of the table paid for
    it (rows under Postgres's 2 KB TOAST threshold are stored inline whatever the column's
    storage setting)."""

    image = models.OneToOneField(
        Image, primary_key=True, on_delete=models.CASCADE, related_name="environment_record"
    )
    data = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"environment of #{self.image_id}"
