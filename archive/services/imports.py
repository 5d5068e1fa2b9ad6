"""Importing source recipes (engine.imports) as records, in batches, idempotently.

Each source has a stable key; a key already imported is a duplicate (and a "changed" problem
when what the source says differs now), so importing the same paths again adds nothing and an
interrupted import resumes by running it again. Rows kept as "needs model" or "needs resource"
are looked at again when imported again: registering the file and re-running the import
brings them in. Per batch of rows, one transaction: the new
records (the source's own pixels stored, like a render's), their provenance rows, counts.

What a source becomes:
- a picture and a complete recipe: a ready record, unverified until a reproduction matches
  (archive.services.verify); its model is the one the source names when registered;
- no picture, the named model registered: a render of the recipe is queued with that model;
- no picture and no such model: kept as "needs model" (never rendered with another model);
- a LoRA or VAE it names that is not registered here (found by hash first: A1111's 12-hex
  addnet hash, an AutoV2, a sha256; then by AIR or Civitai model version; by name only when
  one file has it), or a resource no recipe can name yet (an embedding, a hypernetwork, a
  model upscaler): kept as "needs resource", naming each, never rendered nor shown without it;
- a recipe lacking a field Seedbank needs (steps, seed, a catalogue scheduler…), or saying
  something that moved its pixels which a recipe cannot hold (an img2img strength, a
  variation seed, an unknown param): kept as "incomplete", with the picture, if any, not
  shown as a record.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import get_valid_filename

from archive.batching import batched
from archive.models import ImportProblem, ImportRun, SourceRecord
from archive.services.prompts import PROMPT_ONLY_STATES, source_prompts_create
from engine.imports.discover import Limits, rows
from engine.imports.source import SourceRecipe, SourceResource
from engine.imports.tables import CELL_MAX_CHARS, Rejected, Row
from engine.provenance.signing import Ingredient
from engine.recipe import HIRES_UPSCALERS
from generator.models import Image, ModelVersion, Resource
from generator.selectors.model_versions import model_version_for_source
from generator.selectors.records import pixel_digests_present
from generator.selectors.resources import resource_resolve
from generator.services.records import PIXEL_COLUMNS, image_keywords_index, image_store_pixels
from generator.services.render_jobs import render_job_create
from generator.signals import records_ready

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

BATCH_ROWS = 500
IMPORT_TASK = "archive.tasks.import_run"
RESUME_TASK = "archive.tasks.resume_imports"
SWEEP_UPLOADS_TASK = "archive.tasks.sweep_stale_uploads"
_LOCK_SPACE = 15  # pg_advisory_lock's first key: this app's runs (the second is the run id)


def import_run_start(
    *,
    sources: list[str],
    mapping: dict[str, str],
    user: User | None = None,
    render_missing: bool = True,
) -> ImportRun:
    return ImportRun.objects.create(
        sources=sources, mapping=mapping, started_by=user, render_missing=render_missing
    )


def import_upload_start(
    *,
    files: list[UploadedFile],
    mapping: dict[str, str],
    render_missing: bool,
    user: User | None,
) -> ImportRun:
    """Save staff uploads under SEEDBANK_IMPORTS_DIR/<run>/ and queue the run (row first)."""
    with transaction.atomic():
        run = import_run_start(
            sources=[upload.name or "" for upload in files],
            mapping=mapping,
            user=user,
            render_missing=render_missing,
        )
        folder = upload_folder(run.pk)
        folder.mkdir(parents=True, exist_ok=True)
        for number, upload in enumerate(files):
            with (folder / stored_upload_name(number, upload.name or "")).open("wb") as handle:
                for chunk in upload.chunks():
                    handle.write(chunk)
        transaction.on_commit(lambda: current_app.send_task(IMPORT_TASK, args=[run.pk]))
    return run


# File systems hold 255 bytes a name (ext4, APFS, NTFS in UTF-16 units): a client's name is cut
# to fit well within, in bytes, since one Chinese character takes three.
_STORED_NAME_BYTES = 200


def stored_upload_name(number: int, client_name: str) -> str:
    """Our own name for an uploaded file: its number (which keeps two "a.png" apart), then the
    client's name without folders, cut short but keeping its suffix (which picks the reader).
    The name as the client sent it stays in the run's sources."""
    path = Path(client_name.replace("\\", "/"))
    try:
        name = get_valid_filename(path.name)
    except SuspiciousFileOperation:  # "", "." or ".."
        name = "upload"
    suffix = Path(name).suffix if len(Path(name).suffix) <= 16 else ""
    prefix = f"{number:04d}-"
    budget = _STORED_NAME_BYTES - len(prefix) - len(suffix.encode())
    stem = name.removesuffix(suffix).encode()[:budget].decode(errors="ignore") or "upload"
    return f"{prefix}{stem}{suffix}"


def import_limits() -> Limits:
    """What one import may read, from the settings (the rest are the engine's own)."""
    return Limits(max_member_bytes=settings.SEEDBANK_IMPORT_MAX_MEMBER_BYTES)


def upload_folder(run_id: int) -> Path:
    return Path(settings.SEEDBANK_IMPORTS_DIR) / str(run_id)


def import_run_execute(*, run_id: int) -> None:
    """Worker side of an upload: import its files, unless another worker holds the run.

    The holder keeps a Postgres advisory lock on the run for as long as it imports; a worker
    killed with SIGKILL loses its connection and with it the lock. `imports_resume` (beat,
    every minute) calls this for every run still "running": a held run is skipped, an orphaned
    one resumes where its last committed batch ended (those rows count as duplicates)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_SPACE, run_id])
        if not cursor.fetchone()[0]:
            return
        try:
            run = ImportRun.objects.filter(pk=run_id, status=ImportRun.Status.RUNNING).first()
            if run is None:
                return
            folder = upload_folder(run.pk)
            if not folder.is_dir():  # not an upload (manage.py import reads its own paths)
                return
            paths = sorted(folder.iterdir())
            import_rows(run=run, rows=rows(paths, mapping=run.mapping, limits=import_limits()),
                        render_missing=run.render_missing)  # fmt: skip
            shutil.rmtree(folder, ignore_errors=True)  # the records hold what they need
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_SPACE, run_id])


def imports_resume() -> int:
    """Queue every uploaded run still "running" (import_run_execute skips the held ones).

    An upload is a run with files waiting in its folder, whoever started it (the account may
    be gone since) and whatever the database says of it."""
    running = ImportRun.objects.filter(status=ImportRun.Status.RUNNING)
    ids = [pk for pk in running.values_list("pk", flat=True) if upload_folder(pk).is_dir()]
    for run_id in ids:
        current_app.send_task(IMPORT_TASK, args=[run_id])
    return len(ids)


def import_uploads_sweep(*, now: float | None = None) -> list[Path]:
    """Delete the upload folders no run will read again, once untouched for
    SEEDBANK_UPLOAD_STALE_HOURS: those of stopped and finished runs (a stop leaves its files
    behind), and those with no run (a request that failed while it saved them). A running run's
    folder is kept however old (imports_resume takes it up again), and so is anything in the
    folder that is not a run's (its name is not a number). Returns the folders deleted.

    Nothing else holds these files: records keep their pixels in the media storage."""
    root = Path(settings.SEEDBANK_IMPORTS_DIR)
    if not root.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - settings.SEEDBANK_UPLOAD_STALE_HOURS * 3600
    folders = {
        int(entry.name): entry
        for entry in root.iterdir()
        if entry.is_dir() and entry.name.isdigit() and _last_touched(entry) < cutoff
    }
    running = set(
        ImportRun.objects.filter(pk__in=folders, status=ImportRun.Status.RUNNING).values_list(
            "pk", flat=True
        )
    )
    deleted = []
    for run_id, folder in sorted(folders.items()):
        if run_id in running:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        logger.info("deleted the stale import upload %s", folder)
        deleted.append(folder)
    return deleted


def _last_touched(folder: Path) -> float:
    """The latest modification time of the folder and of anything in it."""
    times = [folder.stat().st_mtime]
    for path in folder.rglob("*"):
        try:
            times.append(path.lstat().st_mtime)
        except OSError:  # deleted meanwhile
            continue
    return max(times)


def import_rows(
    *,
    run: ImportRun,
    rows: Iterable[Row],
    render_missing: bool = True,
    progress: Callable[[int], None] | None = None,
) -> ImportRun:
    """Import every row into `run`; `progress(n)` after each batch of n rows."""
    models, resources = _ModelCache(), _ResourceCache()
    try:
        for batch in batched(rows, BATCH_ROWS):
            _import_batch(run, batch, models, resources, render_missing=render_missing)
            if progress is not None:
                progress(len(batch))
    except BaseException as error:  # KeyboardInterrupt too: the run says it stopped
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.STOPPED, error=repr(error)[:2000], finished_at=timezone.now()
        )
        raise
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRun.Status.DONE, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


@dataclass
class _Counts:
    """One batch's additions to the ImportRun counters of the same names."""

    read: int = 0
    imported: int = 0
    queued: int = 0
    needs_model: int = 0
    needs_resource: int = 0
    incomplete: int = 0
    duplicates: int = 0
    changed: int = 0
    rejected: int = 0


class _ModelCache:
    """model_version_for_source once per (name, hash): a table names a handful of models."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str], ModelVersion | None] = {}

    def get(self, source: SourceRecipe) -> ModelVersion | None:
        key = (source.model_name, source.model_hash)
        if key not in self._found:
            self._found[key] = model_version_for_source(
                name=source.model_name, model_hash=source.model_hash
            )
        return self._found[key]


class _ResourceCache:
    """The registered file each resource a source names stands for, found once per way of
    naming it: a folder of pictures names the same few LoRAs again and again."""

    def __init__(self) -> None:
        self._found: dict[SourceResource, str | None] = {}

    def files(self, source: SourceRecipe) -> tuple[dict[SourceResource, str], list[str]]:
        """{resource: sha256} for the source's LoRAs and VAE, and what it needs that is not
        here, in words ("needs resource lora add_detail 7c6bad76eb54")."""
        found: dict[SourceResource, str] = {}
        needs = [_unavailable_reason(resource) for resource in source.unavailable()]
        for resource in source.files():
            key = replace(resource, weight=0.0)  # the weight does not choose the file
            if key not in self._found:
                self._found[key] = _resource_sha256(key)
            sha256 = self._found[key]
            if sha256 is None:
                needs.append(f"needs resource {resource.describe()}")
            else:
                found[resource] = sha256
        return found, needs


_HEX_HASH = re.compile(r"[0-9a-f]{10}|[0-9a-f]{12}|[0-9a-f]{64}")


def _resource_sha256(resource: SourceResource) -> str | None:
    """The sha256 of the one usable registered file the source means, else None.

    A hash decides when there is one Seedbank can compare (10 hex: AutoV2, 12: A1111's addnet
    short hash, 64: sha256): a hash that matches nothing means the file is not here, whatever
    file has the same name. Then an AIR, a Civitai model version, and last a name that only one
    registered file of that kind has."""
    short = resource.hash.strip().lower()
    if _HEX_HASH.fullmatch(short):
        return _usable(resource_resolve(kind=resource.kind, ref=short))
    if resource.air.startswith("urn:air:"):
        return _usable(resource_resolve(kind=resource.kind, ref=resource.air))
    if resource.civitai_version:
        # AIR names a Civitai file urn:air:{ecosystem}:{type}:civitai:{model}@{version}.
        pattern = rf"^urn:air:[^:]+:[^:]+:civitai:[^@]+@{re.escape(resource.civitai_version)}$"
        return _only(Resource.objects.filter(kind=resource.kind, air__regex=pattern))
    if "@" in resource.name:  # name@revision: one file by definition
        return _usable(resource_resolve(kind=resource.kind, ref=resource.name))
    if resource.name:
        return _only(Resource.objects.filter(kind=resource.kind, name=resource.name))
    return None


def _usable(resource: Resource | None) -> str | None:
    return resource.sha256 if resource is not None and resource.archived_at is None else None


def _only(candidates: models.QuerySet[Resource]) -> str | None:
    """The sha256 of the one unarchived file among `candidates`; None for none or several (a
    name two revisions share does not say which file made the picture)."""
    found = list(candidates.filter(archived_at__isnull=True).values_list("sha256", flat=True)[:2])
    return found[0] if len(found) == 1 else None


def _unavailable_reason(resource: SourceResource) -> str:
    why = {
        "upscaler": f"Seedbank's hires fix upscales with {', '.join(HIRES_UPSCALERS)}",
    }.get(resource.kind, f"Seedbank cannot apply {resource.kind} networks")
    return f"needs resource {resource.describe()} ({why})"


def _import_batch(
    run: ImportRun,
    batch: list[Row],
    models: _ModelCache,
    resources: _ResourceCache,
    *,
    render_missing: bool,
) -> None:
    counts = _Counts(read=len(batch))
    problems: list[ImportProblem] = []
    fresh: list[SourceRecipe] = []
    sources = [row for row in batch if isinstance(row, SourceRecipe)]
    earlier = SourceRecord.objects.filter(source_key__in=[s.source_key for s in sources])
    known = dict(earlier.values_list("source_key", "content_digest"))
    # Rows kept waiting for their model or a resource, with no record made: importing them
    # again looks again (the file may be registered now), replacing the waiting row.
    waiting = set(
        earlier.filter(
            state__in=[SourceRecord.State.NEEDS_MODEL, SourceRecord.State.NEEDS_RESOURCE],
            image__isnull=True,
        ).values_list("source_key", flat=True)
    )
    # Rows kept prompt-only before prompt rows existed (archive 0004) have none: importing
    # the same file again makes them, so re-importing is how an archive catches up.
    unfindable = {
        record.source_key: record
        for record in earlier.filter(
            state__in=PROMPT_ONLY_STATES, image__isnull=True, prompt_only__isnull=True
        )
    }
    caught_up: list[SourceRecipe] = []
    retried: list[str] = []
    # A picture some record already has (a Seedbank render, an earlier import) is not new.
    present = pixel_digests_present(digests=[
        s.source_key.removeprefix("image:") for s in sources if s.source_key.startswith("image:")
    ])  # fmt: skip
    for row in batch:
        if isinstance(row, Rejected):
            counts.rejected += 1
            problems.append(_problem(run, ImportProblem.Kind.REJECTED, row.location, row.reason))
            continue
        if row.source_key.removeprefix("image:") in present and row.source_key not in known:
            counts.duplicates += 1
            continue
        if row.source_key in waiting and row.source_key not in retried:
            retried.append(row.source_key)
            fresh.append(row)
            continue
        if row.source_key in known:
            counts.duplicates += 1
            if row.source_key in unfindable and known[row.source_key] == row.content_digest:
                caught_up.append(row)
            if known[row.source_key] != row.content_digest:
                counts.changed += 1
                problems.append(_problem(run, ImportProblem.Kind.CHANGED, row.location,
                                         "imported before, and the source says something else "
                                         "now; the first import is kept"))  # fmt: skip
            continue
        known[row.source_key] = row.content_digest  # the same source twice in one batch
        fresh.append(row)
    with transaction.atomic():
        SourceRecord.objects.filter(source_key__in=retried, image__isnull=True).delete()
        records = _records(
            run, fresh, models, resources, counts, problems, render_missing=render_missing
        )
        _copy_insert(SourceRecord, records)
        # Rows no record stands for stay findable by their prompt (archive.services.prompts).
        source_prompts_create(records=records, sources=fresh)
        source_prompts_create(
            records=[unfindable[row.source_key] for row in caught_up], sources=caught_up
        )
        _copy_insert(ImportProblem, problems)
        ImportRun.objects.filter(pk=run.pk).update(
            **{f.name: F(f.name) + getattr(counts, f.name) for f in fields(_Counts)}
        )


def _copy_insert(model: type[models.Model], objects: list[Any]) -> None:
    """INSERT by COPY: bulk_create binds every value on the client, which cost 0.6 ms a row
    (most of an import's time); COPY streams them. No signals or pks come back (none needed)."""
    if not objects:
        return
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key or f.generated)]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objects:
            copy.write_row([_copy_value(f, obj) for f in fields])


def _copy_value(field: models.Field[Any, Any], obj: models.Model) -> Any:
    if getattr(field, "auto_now_add", False):
        return timezone.now()
    if isinstance(field, models.ForeignKey) and field.is_cached(obj):
        related = getattr(obj, field.name)  # saved after the assignment: its pk is new
        return None if related is None else related.pk
    value = getattr(obj, field.attname)
    if isinstance(field, models.JSONField):
        return json.dumps(value, ensure_ascii=False)
    return value


def _problem(run: ImportRun, kind: str, location: str, reason: str) -> ImportProblem:
    return ImportProblem(run=run, kind=kind, location=location, reason=reason)


def _records(
    run: ImportRun,
    sources: list[SourceRecipe],
    models: _ModelCache,
    resources: _ResourceCache,
    counts: _Counts,
    problems: list[ImportProblem],
    *,
    render_missing: bool,
) -> list[SourceRecord]:
    records: list[SourceRecord] = []
    pictures: list[tuple[Image, SourceRecipe]] = []

    def reject(source: SourceRecipe, reason: str) -> None:
        counts.rejected += 1
        problems.append(_problem(run, ImportProblem.Kind.REJECTED, source.location, reason))

    for source in sources:
        record = _source_record(run, source)
        if (why := _unstorable(record)) is not None:
            reject(source, why)
            continue
        records.append(record)
        model = models.get(source)
        missing = source.missing()
        if missing or source.unsupported:
            reasons = [f"the source does not give {', '.join(missing)}"] if missing else []
            if source.unsupported:
                reasons.append(f"Seedbank cannot hold {'; '.join(source.unsupported)}")
            record.state, record.reason = SourceRecord.State.INCOMPLETE, "; ".join(reasons)
            counts.incomplete += 1
            continue
        files, needs = resources.files(source)
        if needs:
            # Kept with its raw metadata; its picture is not a record: the recipe without
            # the resource would claim pixels it cannot make.
            if model is None:
                needs.append(f"needs model {_needs_model_reason(source)}")
            record.state, record.reason = SourceRecord.State.NEEDS_RESOURCE, "; ".join(needs)
            counts.needs_resource += 1
        elif source.image is not None:
            image = _ready_image(source, model, files)
            if (why := _unstorable(image)) is not None:
                records.pop()
                reject(source, why)
                continue
            pictures.append((image, source))
            record.image, record.state = image, SourceRecord.State.IMPORTED
            counts.imported += 1
        elif model is None or not render_missing:
            record.state = SourceRecord.State.NEEDS_MODEL
            record.reason = _needs_model_reason(source) if model is None else "not rendered"
            counts.needs_model += 1
        else:
            try:
                # A batch renders seed, seed+1…: the source is image batch_index of it.
                recipe = source.recipe(model.pk, files)
                first_seed = (recipe.seed or 0) - source.batch_index
                job = render_job_create(owner=None, recipe=replace(recipe, seed=first_seed))
            except ValidationError as error:
                record.state = SourceRecord.State.INCOMPLETE
                record.reason = "; ".join(error.messages)
                counts.incomplete += 1
                continue
            record.image = job.images.get(batch_index=source.batch_index)
            record.state = SourceRecord.State.QUEUED
            counts.queued += 1
    _store_pictures(pictures)
    return records


# The most an imported record's text (its prompts) may hold: what a table cell may
# (engine.imports.tables); Postgres keeps a tsvector under 1 MB, and a record's keywords are one.
_TEXT_MAX_CHARS = CELL_MAX_CHARS


def _unstorable(row: models.Model) -> str | None:
    """Why `row` cannot be written as it is, or None: a value past its column (text longer than
    a CharField, a number out of an integer column's range, a prompt past _TEXT_MAX_CHARS), a
    NUL character (Postgres text cannot hold one), a lone surrogate, NaN in JSON. Checked per
    row before the batch is written: one bad row is rejected alone, where the database would
    refuse the whole batch and stop the import."""
    for field in row._meta.concrete_fields:
        if field.primary_key or field.is_relation or isinstance(field, models.FileField):
            continue
        if field.generated:  # Postgres computes it (Image.variant_key): nothing to check
            continue
        value = getattr(row, field.attname)
        if value is None:
            continue
        try:
            if isinstance(field, models.JSONField):
                try:
                    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
                except ValueError:
                    return f"{field.name} holds NaN or Infinity, which JSON cannot"
                nul = "\\u0000" in text
            else:
                text = value if isinstance(value, str) else ""
                nul = "\x00" in text
            if nul:
                return f"{field.name} holds a NUL character"
            text.encode("utf-8")
            if isinstance(field, models.TextField) and len(text) > _TEXT_MAX_CHARS:
                return (
                    f"{field.name} holds {len(text):,} characters; "
                    f"an imported record's text may hold at most {_TEXT_MAX_CHARS:,}"
                )
            field.run_validators(value)
        except UnicodeEncodeError:
            return f"{field.name} is not valid Unicode (a lone surrogate)"
        except (TypeError, ValueError) as error:
            return f"{field.name} cannot be stored ({error})"
        except ValidationError as error:
            return f"{field.name}: {' '.join(error.messages)}"
    return None


def _source_record(run: ImportRun, source: SourceRecipe) -> SourceRecord:
    return SourceRecord(
        run=run,
        source_key=source.source_key,
        tool=source.tool,
        location=source.location,
        content_digest=source.content_digest,
        raw=source.raw,
        model_name=source.model_name[:300],
        model_hash=source.model_hash[:100],
        sampler=source.sampler[:100],
        warnings=list(source.warnings),
    )


def _needs_model_reason(source: SourceRecipe) -> str:
    named = source.model_name or "no model name"
    return f"{named}" + (f" (hash {source.model_hash})" if source.model_hash else "")


def _ready_image(
    source: SourceRecipe, model: ModelVersion | None, files: dict[SourceResource, str]
) -> Image:
    recipe = source.recipe(model.pk if model else None, files)
    return Image(
        **recipe.as_dict(),
        batch_index=source.batch_index,
        model_name=str(model) if model else source.model_name[:300],
        model_digest=model.weights_digest if model else "",
        status=Image.Status.READY,
        finished_at=timezone.now(),
    )


def _store_pictures(pictures: list[tuple[Image, SourceRecipe]]) -> None:
    """The new ready records: rows, then their files (named by id), then digests and text."""
    if not pictures:
        return
    images = Image.objects.bulk_create([image for image, _ in pictures])
    for image, (_, source) in zip(images, pictures, strict=True):
        assert source.image is not None
        image_store_pixels(
            image=image,
            png=source.image,
            pixel_sha256=source.pixel_sha256,
            save=False,
            parent=_parent_ingredient(source),
        )
    Image.objects.bulk_update(images, PIXEL_COLUMNS)
    ids = [image.pk for image in images]
    image_keywords_index(image_ids=ids)
    transaction.on_commit(lambda: records_ready.send(sender=Image, image_ids=ids))


def _parent_ingredient(source: SourceRecipe) -> Ingredient | None:
    """The imported file: the record's manifest names it as its parent (Seedbank opened a
    picture another tool made), and the file's own manifest, if any, travels inside ours."""
    if source.original is None:
        return None
    return Ingredient(
        title=PurePosixPath(source.location.replace("\\", "/")).name or source.location,
        relationship="parentOf",
        data=source.original,
        media_type=source.original_media_type,
    )
