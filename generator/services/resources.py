"""Writes for resources (LoRA, textual-inversion embeddings, VAE files): register a file in
place, pinned by its sha256, after proving it is a kind Seedbank can apply exactly.

As with models, a name+revision never moves to other bytes (records made with it would
change meaning), and a file that cannot be applied whole (LoHa, LoKr, unknown keys) is refused
here with the reason instead of half-loading at render time.
"""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from engine.resources import (
    ResourceError,
    addnet_sha256,
    air_urn,
    file_sha256,
    inspect_embedding,
    inspect_lora,
    inspect_vae,
    parse_air,
)
from generator.models import Resource


class ResourceRefused(Exception):
    """A resource cannot be registered; the message says why and what to do."""


def resource_add(
    *,
    path: Path,
    kind: str,
    name: str,
    revision: str = "main",
    base: str = Resource.Base.SD1,
    air: str = "",
    token: str = "",
    license: str = "",
    notes: str = "",
) -> Resource:
    """Register (or refresh) one resource file where it lies. The same file under the same
    name+revision refreshes the descriptive fields; other bytes under it are refused."""
    name, revision = name.strip(), revision.strip()
    if kind not in Resource.Kind.values:
        raise ResourceRefused(f"Unknown kind {kind!r}; choose one of {Resource.Kind.values}.")
    if base not in Resource.Base.values:
        raise ResourceRefused(f"Unknown base {base!r}; choose one of {Resource.Base.values}.")
    if not name or not revision or "@" in name:
        raise ResourceRefused("A resource needs a --name (without '@') and a --revision.")
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ResourceRefused(f"No such file: {path}")
    try:
        file_format = _inspect(kind, path)
        air = _air(air, base=base, kind=kind, name=name, revision=revision)
    except ResourceError as error:
        raise ResourceRefused(str(error)) from None
    sha256 = file_sha256(path)
    with transaction.atomic():
        existing = (
            Resource.objects.select_for_update()
            .filter(kind=kind, name=name, revision=revision)
            .first()
        )
        if existing is not None and existing.sha256 != sha256:
            raise ResourceRefused(
                f"{kind} {existing} is already registered with other bytes (sha256 "
                f"{existing.sha256}); {path} is {sha256}. Choose another --revision."
            )
        other = Resource.objects.filter(sha256=sha256)
        if existing is not None:
            other = other.exclude(pk=existing.pk)
        if clash := other.first():
            raise ResourceRefused(
                f"These bytes are already registered as {clash.kind} {clash} (sha256 {sha256})."
            )
        resource, _ = Resource.objects.update_or_create(
            kind=kind,
            name=name,
            revision=revision,
            defaults={
                "base": base,
                "path": str(path),
                "sha256": sha256,
                "addnet_sha256": addnet_sha256(path) if kind == Resource.Kind.LORA else "",
                "air": air,
                "token": token.strip() or (path.stem if kind == Resource.Kind.EMBEDDING else ""),
                "file_format": file_format,
                "size_bytes": path.stat().st_size,
                "license": license.strip(),
                "notes": notes.strip(),
            },
        )
    return resource


def _inspect(kind: str, path: Path) -> str:
    if kind == Resource.Kind.LORA:
        return inspect_lora(path).format
    if kind == Resource.Kind.VAE:
        return inspect_vae(path).format
    return inspect_embedding(path).format


def _air(given: str, *, base: str, kind: str, name: str, revision: str) -> str:
    """The resource's AIR: as given (checked), else Seedbank's own for a file made here."""
    if given.strip():
        return str(parse_air(given))
    slug = "".join(ch if ch.isalnum() or ch in "_.~-" else "-" for ch in name).strip("-.")
    version = "".join(ch if ch.isalnum() or ch in "_.~-" else "-" for ch in revision)
    return air_urn(ecosystem=base, kind=kind, source="seedbank", id=slug or "resource",
                   version=version.strip("-.") or "main")  # fmt: skip
