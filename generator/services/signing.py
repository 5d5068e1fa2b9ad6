"""Content Credentials for stored pictures: the site's credential, each record's claim, and
signing its PNG (engine.provenance does the C2PA and XMP work).

Every picture the archive stores goes through `image_store_pixels`, which signs it here: a
render, a restored eviction, an imported picture. A reproduction verdict re-signs the stored
file (`image_signature_refresh`) so the manifest carries the latest verdict; the pixels, and so
the record's pixel sha256, never change.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from engine.infotext import recipe_to_json
from engine.provenance import png_chunks
from engine.provenance.credentials import Keyring, SigningCredential, credential_from_pem
from engine.provenance.reading import read_picture
from engine.provenance.signing import Claim, Ingredient, sign_png
from engine.provenance.xmp import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
)
from generator.models import Image
from generator.selectors.records import image_last_reproduction

SOFTWARE = "Seedbank 0.1.0"


def site_keyring() -> Keyring:
    return Keyring(settings.SEEDBANK_SIGNING_DIR)


@functools.cache
def site_credential() -> SigningCredential:
    """The operator's certificate when configured, else the site's own (made on first use)."""
    if settings.SEEDBANK_SIGNING_CERT or settings.SEEDBANK_SIGNING_KEY:
        return credential_from_pem(
            Path(settings.SEEDBANK_SIGNING_CERT).read_bytes(),
            Path(settings.SEEDBANK_SIGNING_KEY).read_bytes(),
        )
    return site_keyring().ensure(settings.SEEDBANK_SITE_NAME)


def site_certificate_chains() -> list[bytes]:
    """Every chain this site has signed with: the current one and those rotated out."""
    chains = site_keyring().chains()
    current = site_credential().chain_pem
    return chains if current in chains else [*chains, current]


def image_claim(*, image: Image, pixel_sha256: str, parent: Ingredient | None = None) -> Claim:
    """What the site states about a record's picture. `parent` is the file an imported picture
    came from (its own manifest, if any, stays inside ours)."""
    recipe = image.recipe_portable()
    last = image_last_reproduction(image=image)
    imported = parent is not None
    ingredients = [parent] if parent else _input_ingredients(image)
    return Claim(
        title=f"seedbank-{image.pk}.png",
        action="c2pa.opened" if imported else "c2pa.created",
        digital_source_type=(
            TRAINED_ALGORITHMIC_MEDIA
            if image.mode == Image.Mode.TXT2IMG
            else COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
        ),
        software=SOFTWARE,
        recipe={
            "record": image.pk,
            "recipe": recipe,
            "recipe_sha256": hashlib.sha256(recipe_to_json(recipe).encode()).hexdigest(),
            "pixel_sha256": pixel_sha256,
            "reproduction": (
                {"verdict": last.verdict, "checked_at": last.finished_at.isoformat()}
                if last is not None and last.finished_at is not None
                else None
            ),
        },
        made_with=_made_with(recipe),
        ingredients=ingredients,
    )


def image_signed_png(
    *, image: Image, png: bytes, pixel_sha256: str, parent: Ingredient | None = None
) -> bytes:
    """`png` with the record's XMP and a manifest signed by the site."""
    claim = image_claim(image=image, pixel_sha256=pixel_sha256, parent=parent)
    return sign_png(png, claim, site_credential())


def image_signature_refresh(*, image: Image) -> bool:
    """Re-sign a stored picture so its manifest states the latest verdict. A picture imported
    from elsewhere keeps its earlier signed file as the parent ingredient (that one holds the
    source's own manifest). False when there is no stored file."""
    if not image.image_file:
        return False
    with image.image_file.open("rb") as handle:
        stored = bytes(handle.read())
    parent = None
    if _action_of(stored) == "c2pa.opened":
        parent = Ingredient(
            title=Path(image.image_file.name).name,
            relationship="parentOf",
            data=stored,
            media_type="image/png",
        )
    signed = image_signed_png(
        image=image,
        png=png_chunks.unsigned(stored),
        pixel_sha256=image.pixel_sha256,
        parent=parent,
    )
    old_name = image.image_file.name
    # A new name, then the row, then the old file: readers never see half a file.
    image.image_file.save(
        f"{image.pk}-{image.pixel_sha256[:12]}.png", ContentFile(signed), save=False
    )
    Image.objects.filter(pk=image.pk).update(image_file=image.image_file.name)
    storage = image.image_file.storage
    transaction.on_commit(lambda: storage.delete(old_name))
    return True


def _action_of(png: bytes) -> str:
    try:
        report = read_picture(png, max_pixels=1 << 40, max_bytes=len(png))
    except ValueError:
        return ""
    return report.credentials.action if report.credentials else ""


def _input_ingredients(image: Image) -> list[Ingredient]:
    found = []
    for role, source in (("init-image", image.init_image), ("mask", image.mask)):
        if source is not None and source.file:
            with source.file.open("rb") as handle:
                data = bytes(handle.read())
            media_type = "image/png" if data.startswith(png_chunks.PNG_SIGNATURE) else ""
            found.append(
                Ingredient(
                    title=f"{role}-{source.pixel_sha256[:12]}.png",
                    relationship="inputTo",
                    data=data,
                    media_type=media_type or "image/jpeg",
                )
            )
    return found


def _made_with(recipe: dict[str, Any]) -> dict[str, Any]:
    resources = [
        {"kind": "lora", "name": lora["name"], "sha256": lora["resource"], "weight": lora["weight"]}
        for lora in recipe.get("loras") or ()
    ]
    resources += [
        {"kind": "embedding", "name": use["token"], "sha256": use["resource"]}
        for use in recipe.get("embeddings") or ()
    ]
    if recipe.get("vae"):
        resources.append(
            {"kind": "vae", "name": recipe["vae"]["name"], "sha256": recipe["vae"]["resource"]}
        )
    made = {
        "model": {"name": recipe["model"], "digest": recipe["model_digest"]},
        "resources": resources,
    }
    if recipe.get("refiner"):
        made["refiner"] = {"digest": recipe["refiner"]}
    return made


__all__ = [
    "image_claim",
    "image_signature_refresh",
    "image_signed_png",
    "site_certificate_chains",
    "site_credential",
]
