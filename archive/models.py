"""Where imported recipes came from, and what each import run did."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from generator.models import Image


class ImportRun(models.Model):
    """One `manage.py import` or staff upload: what it read and what became of each row."""

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        STOPPED = "stopped"  # interrupted or failed: importing the same paths again resumes

    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    sources = models.JSONField(default=list)  # the paths or upload names, as given
    mapping = models.JSONField(default=dict)  # CSV/JSONL field → column path
    render_missing = models.BooleanField(default=True)  # queue renders for picture-less rows
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(blank=True)
    # Counts, updated after every batch: a staff page shows a run in progress.
    read = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)  # new records, the source's own pixels
    queued = models.PositiveIntegerField(default=0)  # new records, no picture: render queued
    needs_model = models.PositiveIntegerField(default=0)  # kept; their model is not here
    # kept; a LoRA, VAE, embedding… they name is not registered here (or cannot be applied)
    needs_resource = models.PositiveIntegerField(default=0)
    incomplete = models.PositiveIntegerField(default=0)  # kept; the recipe lacks a field
    duplicates = models.PositiveIntegerField(default=0)  # imported before (changed or not)
    changed = models.PositiveIntegerField(default=0)  # imported before, and now different
    rejected = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import #{self.pk} ({self.status})"


class SourceRecord(models.Model):
    """One imported source (an image file or a table row), verbatim, and its record if any.

    A record made from it is unverified until a reproduction of it (generator's Reproduction)
    is bit-identical to the source's own pixels."""

    class State(models.TextChoices):
        IMPORTED = "imported", "imported with its picture"
        QUEUED = "queued", "no picture: rendering with its model"
        NEEDS_MODEL = "needs-model", "needs its model"
        # Never rendered (nor shown as a record) without the files it names.
        NEEDS_RESOURCE = "needs-resource", "needs a resource"
        INCOMPLETE = "incomplete", "incomplete recipe"

    source_key = models.CharField(max_length=500, unique=True)
    tool = models.CharField(max_length=20)
    location = models.TextField()  # "photos/cat.png", "prompts.csv line 12"
    content_digest = models.CharField(max_length=64)
    raw = models.JSONField(default=dict)  # the metadata verbatim
    # As the source named them; the record holds Seedbank's own (catalogue scheduler, model).
    model_name = models.CharField(max_length=300, blank=True)
    model_hash = models.CharField(max_length=100, blank=True)
    sampler = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=20, choices=State.choices)
    reason = models.TextField(blank=True)  # why incomplete / which model or resources it needs
    warnings = models.JSONField(default=list)
    image = models.OneToOneField(
        Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="source_record"
    )
    run = models.ForeignKey(ImportRun, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["state", "tool"], name="source_by_state")]

    def __str__(self) -> str:
        return f"{self.tool}: {self.location}"


class ImportProblem(models.Model):
    """A row an import run rejected, or found changed since it was first imported."""

    class Kind(models.TextChoices):
        REJECTED = "rejected"
        CHANGED = "changed"

    run = models.ForeignKey(ImportRun, on_delete=models.CASCADE, related_name="problems")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    location = models.TextField()
    reason = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.location}"
