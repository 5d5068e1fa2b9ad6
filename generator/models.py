from __future__ import annotations

from django.conf import settings
from django.db import models


class ModelVersion(models.Model):
    """A diffusion checkpoint that renders recipes, pinned by a digest of its files."""

    name = models.CharField(max_length=200)
    revision = models.CharField(max_length=100, default="main")
    path = models.CharField(max_length=1000, help_text="Local diffusers folder")
    weights_digest = models.CharField(max_length=64)
    default_scheduler = models.CharField(max_length=40, default="PNDM")
    native_width = models.PositiveIntegerField(default=512)
    native_height = models.PositiveIntegerField(default=512)
    is_default = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "revision"], name="model_version_unique"),
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="one_default_model_version",
            ),
        ]
        ordering = ["name", "revision"]

    def __str__(self) -> str:
        return f"{self.name}@{self.revision}"


class RenderJob(models.Model):
    """One unit of GPU work: render a batch of images, or re-render one to check it."""

    class Kind(models.TextChoices):
        RENDER = "render"
        REPRODUCE = "reproduce"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.RENDER)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # Stored so an operator can revoke the Celery task and so a redelivery is recognisable.
    celery_task_id = models.CharField(max_length=64, blank=True)
    progress_step = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    device = models.CharField(max_length=200, blank=True)
    render_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED}


class DevicePrice(models.Model):
    """What an hour of a device costs, matched against the device name a worker records."""

    name_contains = models.CharField(
        max_length=100, unique=True, help_text="Case-insensitive part of the device name, e.g. A100"
    )
    usd_per_hour = models.DecimalField(max_digits=8, decimal_places=4)
    notes = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name_contains"]

    def __str__(self) -> str:
        return f"{self.name_contains}: {self.usd_per_hour} USD/h"
