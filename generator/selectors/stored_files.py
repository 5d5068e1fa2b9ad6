"""Reads for the files rows point at: media (every file field of this app's models), model
folders and resource files, with the digests the rows promise. Backups copy what these name;
`manage.py check_archive` compares them with the disk."""

from __future__ import annotations

import datetime
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from functools import reduce
from typing import Any

from django.apps import apps
from django.db import models

from generator.models import Image, ModelVersion, Reproduction, Resource, SourceImage

# Columns that change together with a row's files (eviction empties image_file and stamps
# evicted_at; a restore writes the pixels back with their digest): a backup whose file vanished
# after its dump carries their newer values (generator.services.records.image_evict).
_FILE_STATE_COLUMNS = ("evicted_at", "pixel_sha256")


@dataclass(frozen=True)
class MediaReference:
    """One row's file under MEDIA_ROOT: its table, primary key and column, and the name."""

    table: str
    pk: int
    column: str
    name: str

    @property
    def what(self) -> str:
        return f"{self.table} {self.pk} {self.column}"


@dataclass(frozen=True)
class StoredFile:
    """A model folder (ModelVersion) or a resource file, and the digest records pin it by."""

    table: str
    pk_column: str
    pk: int
    column: str  # where the path is stored
    label: str
    path: str
    digest: str
    size: int | None = None  # resources record their size


@dataclass(frozen=True)
class PixelDigest:
    """A stored picture and the digest of its decoded pixels; `kind` says which formula
    (an init image and a mask are digested with their mode and size: source_image_store)."""

    what: str
    name: str
    pixel_sha256: str
    kind: str


def _column(field: Any) -> str:
    column = field.column
    assert column is not None  # every concrete field has one
    return str(column)


def _file_fields() -> Iterator[tuple[type[models.Model], list[models.FileField]]]:
    for model in apps.get_app_config("generator").get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, models.FileField)]
        if fields:
            yield model, fields


def media_references() -> Iterator[MediaReference]:
    """Every non-empty file column of every row, in pages (archives hold millions)."""
    for model, fields in _file_fields():
        names = [field.attname for field in fields]
        empty = reduce(operator.and_, (models.Q(**{name: ""}) for name in names))
        rows = (
            model._default_manager.exclude(empty)
            .order_by("pk")
            .values_list("pk", *names)
            .iterator(chunk_size=5000)
        )
        for pk, *values in rows:
            for field, value in zip(fields, values, strict=True):
                if value:
                    yield MediaReference(model._meta.db_table, pk, _column(field), str(value))


@dataclass(frozen=True)
class FileState:
    """One row's file columns as they are now, and the columns that move with them."""

    pk_column: str
    files: dict[str, str]
    others: dict[str, Any]  # JSON-ready


def media_file_state(*, table: str, pk: int) -> FileState | None:
    """The file columns of row `pk` of `table` as they are now; None when the row is gone."""
    for model, fields in _file_fields():
        if model._meta.db_table != table:
            continue
        concrete = {_column(field): field for field in model._meta.concrete_fields}
        others = [name for name in _FILE_STATE_COLUMNS if name in concrete]
        row = (
            model._default_manager.filter(pk=pk)
            .values(*(f.attname for f in fields), *(concrete[c].attname for c in others))
            .first()
        )
        if row is None:
            return None
        assert model._meta.pk is not None
        return FileState(
            pk_column=_column(model._meta.pk),
            files={_column(field): str(row[field.attname] or "") for field in fields},
            others={column: _json_ready(row[concrete[column].attname]) for column in others},
        )
    raise LookupError(f"No table {table} with files in this app")


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def model_folders() -> list[StoredFile]:
    """Every registered model version's folder and weights digest (archived ones too: their
    records still name them)."""
    return [
        StoredFile(
            table=ModelVersion._meta.db_table,
            pk_column=_column(ModelVersion._meta.get_field("id")),
            pk=pk,
            column=_column(ModelVersion._meta.get_field("path")),
            label=f"{name}@{revision}",
            path=path,
            digest=digest,
        )
        for pk, name, revision, path, digest in ModelVersion.objects.order_by("pk").values_list(
            "pk", "name", "revision", "path", "weights_digest"
        )
    ]


def resource_files() -> list[StoredFile]:
    """Every registered resource's file (LoRA, embedding, VAE), its sha256 and size."""
    return [
        StoredFile(
            table=Resource._meta.db_table,
            pk_column=_column(Resource._meta.get_field("id")),
            pk=pk,
            column=_column(Resource._meta.get_field("path")),
            label=f"{kind} {name}@{revision}",
            path=path,
            digest=sha256,
            size=size,
        )
        for pk, kind, name, revision, path, sha256, size in Resource.objects.order_by(
            "pk"
        ).values_list("pk", "kind", "name", "revision", "path", "sha256", "size_bytes")
    ]


def images_without_pixels() -> list[int]:
    """Ready records that are not evicted and yet name no image file."""
    return list(
        Image.objects.filter(
            status=Image.Status.READY, evicted_at__isnull=True, image_file=""
        ).values_list("pk", flat=True)
    )


def pixel_digests() -> Iterator[PixelDigest]:
    """Stored pictures with the pixel digest their row promises: records, reproductions and
    uploaded sources."""
    for pk, name, digest in (
        Image.objects.exclude(image_file="")
        .exclude(pixel_sha256="")
        .order_by("pk")
        .values_list("pk", "image_file", "pixel_sha256")
        .iterator(chunk_size=2000)
    ):
        yield PixelDigest(f"image {pk}", name, digest, "image")
    for pk, name, digest in (
        Reproduction.objects.exclude(image_file="")
        .exclude(pixel_sha256="")
        .order_by("pk")
        .values_list("pk", "image_file", "pixel_sha256")
        .iterator(chunk_size=2000)
    ):
        yield PixelDigest(f"reproduction {pk}", name, digest, "image")
    for pk, name, digest, kind in (
        SourceImage.objects.exclude(file="")
        .order_by("pk")
        .values_list("pk", "file", "pixel_sha256", "kind")
        .iterator(chunk_size=2000)
    ):
        yield PixelDigest(f"{kind} source {pk}", name, digest, kind)


def pixel_digests_count() -> int:
    return (
        Image.objects.exclude(image_file="").exclude(pixel_sha256="").count()
        + Reproduction.objects.exclude(image_file="").exclude(pixel_sha256="").count()
        + SourceImage.objects.exclude(file="").count()
    )
