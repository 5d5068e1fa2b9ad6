"""Render jobs: units of GPU work, with progress, timing and the device they ran on."""

from __future__ import annotations

from django.conf import settings
from django.db import models


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
