"""Resources beside checkpoints: LoRA adapters, textual-inversion embeddings and VAE files.

Each is one file, pinned by the sha256 of its bytes: recipes name it by that digest, so a record
means the same file in any archive. A1111 and Civitai name files by short forms of hashes
(AutoV2: the first 10 hex of the sha256; for LoRAs, kohya's "addnet" hash of the tensors after
the header), which are indexed here so imported recipes find their files.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Resource(models.Model):
    class Kind(models.TextChoices):
        LORA = "lora", _("LoRA")
        EMBEDDING = "embedding", _("textual-inversion embedding")
        VAE = "vae", _("VAE")

    class Base(models.TextChoices):
        # AIR's ecosystem: which family of models the file fits.
        SD1 = "sd1", _("Stable Diffusion 1.x")
        SD2 = "sd2", _("Stable Diffusion 2.x")
        SDXL = "sdxl", _("Stable Diffusion XL")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=200)
    revision = models.CharField(max_length=100, default="main")
    base = models.CharField(max_length=10, choices=Base.choices, default=Base.SD1)
    path = models.CharField(max_length=1000, help_text="Local file")
    sha256 = models.CharField(max_length=64, unique=True)
    # A1111's "Lora hashes" short form is the first 12 hex of this (LoRAs only).
    addnet_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    # Civitai's portable name: urn:air:<base>:<type>:<source>:<id>@<version>.
    air = models.CharField(max_length=300, blank=True, db_index=True)
    # Embeddings: the word a prompt uses for it (A1111 uses the file name).
    token = models.CharField(max_length=100, blank=True)
    file_format = models.CharField(max_length=40, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    license = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "name", "revision"], name="resource_unique_name"
            ),
        ]
        indexes = [
            # AutoV2 lookups (first 10 hex of the sha256) from imported infotext.
            models.Index(
                fields=["sha256"], name="resource_sha256_prefix", opclasses=["varchar_pattern_ops"]
            ),
        ]
        ordering = ["kind", "name", "revision"]

    def __str__(self) -> str:
        return f"{self.name}@{self.revision}"

    @property
    def autov2(self) -> str:
        return self.sha256[:10]
