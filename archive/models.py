"""Where imported recipes came from, and what each import run did."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from generator.models import Image
from search.models import EMBEDDING_DIM


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


class SourcePrompt(models.Model):
    """The prompt of an imported row Seedbank cannot render as its source did (its model or a
    resource is not here, or its recipe is incomplete): searchable by words and by meaning as a
    "prompt only" result, never shown as a picture or as a record.

    The keyword vector is built as records' are (generator.services.records.keyword_vector);
    the vector is the active CLIP's *text* embedding of the prompt, filled in by a cpu task
    (archive.services.prompts.source_prompts_embed), so an import never waits for CLIP."""

    source = models.OneToOneField(
        SourceRecord, on_delete=models.CASCADE, primary_key=True, related_name="prompt_only"
    )
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    # What else the row gives of its recipe, by Recipe field name (seed, steps, guidance, width,
    # height, scheduler when it maps to the catalogue): "Render this prompt with a model here"
    # starts from it. Not columns: nothing searches by them, and the record holds the real ones.
    known = models.JSONField(default=dict)
    nsfw = models.BooleanField(default=False)  # the source's own flag (Lexica, DiffusionDB)
    hidden = models.BooleanField(default=False)  # staff moderation, as for records
    search_vector = SearchVectorField(null=True, editable=False)
    embedding = VectorField(dimensions=EMBEDDING_DIM, null=True, blank=True, editable=False)
    # The model that made `embedding`; blank: waiting for one (the embedding backlog).
    embedding_model = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            GinIndex(fields=["search_vector"], name="source_prompt_keywords"),
            HnswIndex(
                name="source_prompt_hnsw_cosine",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            models.Index(
                fields=["created_at"],
                name="source_prompt_unembedded",
                condition=models.Q(embedding_model=""),
            ),
        ]

    def __str__(self) -> str:
        return f"prompt of {self.source}"


class PromptRender(models.Model):
    """A record rendered here from an imported row's prompt ("Render this prompt with a model
    here"): its lineage points at the source row, which it never stands in for."""

    image = models.OneToOneField(
        Image, on_delete=models.CASCADE, primary_key=True, related_name="prompt_source"
    )
    source = models.ForeignKey(SourceRecord, on_delete=models.CASCADE, related_name="renders")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"#{self.image_id} from the prompt of {self.source}"
