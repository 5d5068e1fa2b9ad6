"""Reads for imports: a run's problems, the sources a verification sweep should check."""

from __future__ import annotations

from django.db.models import Count, Min, QuerySet

from archive.models import ImportProblem, ImportRun, SourceRecord
from generator.models import Image
from generator.selectors.records import image_last_reproduction


def import_problems(*, run: ImportRun, limit: int = 1000) -> list[ImportProblem]:
    return list(ImportProblem.objects.filter(run=run).order_by("id")[:limit])


def import_problems_count(*, run: ImportRun) -> int:
    return ImportProblem.objects.filter(run=run).count()


def import_runs() -> QuerySet[ImportRun]:
    return ImportRun.objects.order_by("-created_at")


def imported_images_to_verify() -> QuerySet[Image]:
    """Records imported with their picture whose model is registered, not yet checked (no
    reproduction pending or finished)."""
    return (
        Image.objects.filter(
            source_record__state=SourceRecord.State.IMPORTED, model_version__isnull=False
        )
        .exclude(reproductions__isnull=False)
        .order_by("pk")
    )


def source_verification(*, record: SourceRecord) -> str:
    """ "unverified", or the latest finished reproduction's verdict ("bit-identical" means
    verified: Seedbank re-made the source's own pixels)."""
    if record.image is None or record.state != SourceRecord.State.IMPORTED:
        return "unverified"
    latest = image_last_reproduction(image=record.image)
    return "unverified" if latest is None else str(latest.verdict)


def import_run_find(*, run_id: int) -> ImportRun | None:
    return ImportRun.objects.filter(pk=run_id).first()


def import_problem_reasons(*, run: ImportRun, limit: int = 20) -> list[dict[str, object]]:
    """The run's problems grouped by kind and reason, commonest first, with one place each:
    7,000 rows with the same fault read as one line."""
    grouped = list(
        ImportProblem.objects.filter(run=run)
        .values("kind", "reason")
        .annotate(rows=Count("id"), first=Min("id"))  # the first found, not the least text
        .order_by("-rows", "reason")[:limit]
    )
    places = dict(
        ImportProblem.objects.filter(pk__in=[group["first"] for group in grouped]).values_list(
            "pk", "location"
        )
    )
    return [{**group, "example": places[group["first"]]} for group in grouped]
