"""Render jobs: units of GPU work, with progress, timing and the device they ran on."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class RenderJob(models.Model):
    """One unit of GPU work: render a batch of images, or re-render one to check it."""

    class Kind(models.TextChoices):
        RENDER = "render"
        REPRODUCE = "reproduce"

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.RENDER)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # Stored so a cancel can revoke the Celery task and so a redelivery is recognisable.
    celery_task_id = models.CharField(max_length=64, blank=True)
    # When it was last published to the broker; null while it never was (the broker was down
    # at submit): the sweeper sends it then (generator/services/sweeper.py).
    sent_at = models.DateTimeField(null=True, blank=True)
    # A running job is leased: its worker's heartbeat pushes lease_expires_at forward, and a
    # job whose lease ran out (its worker died) is queued again by the sweeper, up to
    # SEEDBANK_JOB_MAX_ATTEMPTS. claim_token fences each attempt: progress, storing and
    # finishing only count while the row still holds this attempt's token.
    attempts = models.PositiveSmallIntegerField(default=0)
    claim_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    # The pool process rendering this attempt, on `worker`'s host: a successor on that host
    # that finds the process gone takes the job over at once instead of waiting out the lease.
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    # What the job costs the GPU, in megapixel-steps (width x height / 1e6 x steps x images,
    # hires pass included): the unit of quotas and of the time limit (generator/services/queue).
    cost = models.FloatField(default=0.0, db_default=0.0)
    # The task's soft time limit, from the recipe's size (generator/services/queue.py).
    time_limit_seconds = models.PositiveIntegerField(null=True, blank=True)
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
        indexes = [
            # The sweeper and the queue position read only unfinished jobs.
            models.Index(
                fields=["status", "id"],
                name="job_unfinished",
                condition=models.Q(status__in=["queued", "running"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


FINISHED = {RenderJob.Status.DONE, RenderJob.Status.FAILED, RenderJob.Status.CANCELLED}
