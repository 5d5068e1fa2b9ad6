"""Reads for resources (LoRA, embeddings, VAE files): finding one by any name people use for
it, and proving its file is still the one registered before a render uses it."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from django.db.models import QuerySet
from django.utils.translation import gettext

from engine.png_metadata import ResourceNames
from engine.recipe import EmbeddingUse, LoraUse, Recipe, ResourceUse
from engine.resources import file_digest
from generator.models import Resource

_HEX = frozenset("0123456789abcdef")


class ResourceUnavailable(Exception):
    """A resource a recipe names is unknown, archived, missing or changed (message in the
    active language)."""


def resources_renderable(*, kind: str) -> QuerySet[Resource]:
    return Resource.objects.filter(kind=kind, archived_at__isnull=True)


def resource_resolve(*, kind: str, ref: str) -> Resource | None:
    """The registered resource `ref` names: its sha256, its AIR, its name (the newest
    revision), "name@revision", an AutoV2 short hash (10 hex) or, for LoRAs, A1111's 12-hex
    "addnet" hash. A short hash or a name that fits several files finds none."""
    ref = ref.strip()
    if not ref:
        return None
    found = Resource.objects.filter(kind=kind)
    lowered = ref.lower()
    if len(lowered) == 64 and set(lowered) <= _HEX:
        return found.filter(sha256=lowered).first()
    if lowered.startswith("urn:air:"):
        return found.filter(air=ref).first()
    name, _, revision = ref.partition("@")
    by_name = found.filter(name=name, archived_at__isnull=True)
    if revision:
        by_name = by_name.filter(revision=revision)
    if match := by_name.order_by("-created_at", "-id").first():
        return match
    if set(lowered) <= _HEX and len(lowered) in (10, 12):
        # A1111's 12-hex "Lora hashes" are kohya's addnet hash; its 12-hex "TI hashes" and
        # every 10-hex AutoV2 are prefixes of the file's own sha256.
        column = "addnet_sha256" if len(lowered) == 12 and kind == "lora" else "sha256"
        candidates = list(found.filter(**{f"{column}__startswith": lowered})[:2])
        return candidates[0] if len(candidates) == 1 else None
    return None


@dataclass(frozen=True)
class ResolvedResources:
    loras: tuple[LoraUse, ...]
    vae: ResourceUse | None
    errors: dict[str, list[str]]


def recipe_resources_resolve(
    *, loras: list[tuple[str, float]], vae: str | None
) -> ResolvedResources:
    """LoRAs and a VAE as people name them → the recipe's uses, by file digest; unknown or
    archived ones are errors by field (never dropped)."""
    errors: dict[str, list[str]] = {}
    uses = []
    for ref, weight in loras:
        resource = resource_resolve(kind=Resource.Kind.LORA, ref=ref)
        if resource is None or resource.archived_at is not None:
            errors.setdefault("loras", []).append(
                gettext("Unknown LoRA %(name)s; register it first (manage.py resource_add).")
                % {"name": repr(ref)}
            )
            continue
        uses.append(LoraUse(resource=resource.sha256, weight=weight, name=str(resource)))
    vae_use = None
    if vae:
        resource = resource_resolve(kind=Resource.Kind.VAE, ref=vae)
        if resource is None or resource.archived_at is not None:
            errors.setdefault("vae", []).append(
                gettext("Unknown VAE %(name)s; register it first (manage.py resource_add).")
                % {"name": repr(vae)}
            )
        else:
            vae_use = ResourceUse(resource=resource.sha256, name=str(resource))
    return ResolvedResources(loras=tuple(uses), vae=vae_use, errors=errors)


def recipe_embeddings_pin(*, recipe: Recipe) -> Recipe:
    """The recipe with the embeddings its prompts name by token (as A1111 finds them: the
    token as a word of the prompt), each pinned by its file's digest. A recipe that already
    names its embeddings (a remix, an import) keeps them."""
    if recipe.embeddings:
        return recipe
    text = f"{recipe.prompt}\n{recipe.negative_prompt}"
    newest: dict[str, Resource] = {}
    for resource in resources_renderable(kind=Resource.Kind.EMBEDDING).exclude(token=""):
        if resource.token not in newest or resource.created_at > newest[resource.token].created_at:
            newest[resource.token] = resource
    uses = tuple(
        EmbeddingUse(token=token, resource=resource.sha256, name=str(resource))
        for token, resource in sorted(newest.items())
        if re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text)
    )
    return replace(recipe, embeddings=uses) if uses else recipe


def recipe_resources_problems(*, recipe: Recipe) -> dict[str, list[str]]:
    """Resources a recipe names that are not registered under their kind (or are archived)."""
    problems: dict[str, list[str]] = {}
    wanted = [(lora.resource, Resource.Kind.LORA, "loras") for lora in recipe.loras]
    wanted += [(use.resource, Resource.Kind.EMBEDDING, "embeddings") for use in recipe.embeddings]
    if recipe.vae is not None:
        wanted.append((recipe.vae.resource, Resource.Kind.VAE, "vae"))
    usable = set(
        Resource.objects.filter(
            sha256__in=[sha for sha, _, _ in wanted], archived_at__isnull=True
        ).values_list("sha256", "kind")
    )
    for sha256, kind, field in wanted:
        if (sha256, kind) not in usable:
            problems.setdefault(field, []).append(
                gettext("No registered %(kind)s has the sha256 %(sha)s.")
                % {"kind": Resource.Kind(kind).label, "sha": sha256}
            )
    return problems


def resource_files(*, recipe: Recipe) -> dict[str, str]:
    """{sha256: path} for every resource the recipe uses, each file re-hashed when it changed
    on disk; ResourceUnavailable when one is unknown, missing or no longer the same bytes."""
    wanted = recipe.resources()
    rows = {row.sha256: row for row in Resource.objects.filter(sha256__in=wanted)}
    files = {}
    for sha256 in wanted:
        row = rows.get(sha256)
        if row is None:
            raise ResourceUnavailable(
                gettext("No resource with sha256 %(sha)s is registered here.") % {"sha": sha256}
            )
        found = file_digest(Path(row.path))
        if found is None:
            raise ResourceUnavailable(
                gettext("The file of %(name)s is missing at %(path)s.")
                % {"name": row, "path": row.path}
            )
        if found != sha256:
            raise ResourceUnavailable(
                gettext(
                    "The file of %(name)s at %(path)s has changed since it was registered "
                    "(sha256 %(found)s, registered %(sha)s)."
                )
                % {"name": row, "path": row.path, "found": found, "sha": sha256}
            )
        files[sha256] = row.path
    return files


def resource_names(*, recipe: Recipe) -> dict[str, ResourceNames]:
    """How A1111 names each resource the recipe uses (alias and short hash), by sha256."""
    return {
        row.sha256: ResourceNames.of(
            kind=row.kind, name=row.name, sha256=row.sha256, addnet_sha256=row.addnet_sha256
        )
        for row in Resource.objects.filter(sha256__in=recipe.resources())
    }
