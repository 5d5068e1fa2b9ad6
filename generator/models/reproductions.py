"""Reproduction checks: a record re-rendered from its recipe, and the verdict on its pixels."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from generator.models.jobs import RenderJob
from generator.models.records import Image


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
        PENDING = "pending", _("Pending")
        BIT_IDENTICAL = "bit-identical", _("Bit Identical")
        VISUALLY_IDENTICAL = "visually-identical", _("Visually Identical")
        DIFFERS = "differs", _("Differs")
        FAILED = "failed", _("Failed")

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
