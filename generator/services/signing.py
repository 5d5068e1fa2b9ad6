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
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.db import transaction

from engine.infotext import recipe_to_json
from engine.provenance import png_chunks
from engine.provenance.credentials import (
    CredentialError,
    Keyring,
    SigningCredential,
    credential_from_pem,
)
from engine.provenance.reading import manifest_action, read_picture
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


def site_credential() -> SigningCredential:
    """The operator's certificate when configured, else the site's own (made on first use).

    Cached per process, and checked before each use for a cheap sign of change: the operator's
    files by their modification times, the keyring by the name of its current folder. So a
    rotation (`manage.py signing_key rotate`) or replaced operator files take effect with the
    next signing in every running worker, without a restart. ImproperlyConfigured when the
    operator's files cannot sign."""
    cert, key = settings.SEEDBANK_SIGNING_CERT, settings.SEEDBANK_SIGNING_KEY
    if cert or key:
        if not (cert and key):
            raise ImproperlyConfigured(
                "Set both SEEDBANK_SIGNING_CERT and SEEDBANK_SIGNING_KEY, or neither."
            )
        return _operator_credential(cert, key, _modified(cert), _modified(key))
    keyring = site_keyring()
    name = keyring.current_name()
    if name is not None:
        try:
            return _keyring_credential(str(keyring.directory), name)
        except FileNotFoundError:  # rotated out between the listing and the read
            pass
    return keyring.ensure(settings.SEEDBANK_SITE_NAME)


def site_credential_is_operators() -> bool:
    """Whether the site signs with a certificate the operator configured."""
    return bool(settings.SEEDBANK_SIGNING_CERT or settings.SEEDBANK_SIGNING_KEY)


def site_credential_rotate() -> SigningCredential:
    """A new credential for the site's own signing; the old private key is deleted, its chain
    kept (pictures signed before still validate and are still recognized as this site's).
    ImproperlyConfigured when the operator's certificate is in use: that one is replaced by
    replacing its files."""
    if site_credential_is_operators():
        raise ImproperlyConfigured(
            "The site signs with the operator's certificate (SEEDBANK_SIGNING_CERT and "
            "SEEDBANK_SIGNING_KEY): rotate it by replacing those files; running workers use the "
            "new ones at their next signing."
        )
    return site_keyring().rotate(settings.SEEDBANK_SITE_NAME)


@functools.lru_cache(maxsize=4)
def _operator_credential(
    cert: str, key: str, _cert_seen: tuple[int, int, int], _key_seen: tuple[int, int, int]
) -> SigningCredential:
    try:
        return credential_from_pem(Path(cert).read_bytes(), Path(key).read_bytes())
    except CredentialError as error:
        raise ImproperlyConfigured(
            f"SEEDBANK_SIGNING_CERT / SEEDBANK_SIGNING_KEY ({cert}, {key}) cannot sign: {error}"
        ) from None


@functools.lru_cache(maxsize=4)
def _keyring_credential(directory: str, name: str) -> SigningCredential:
    return Keyring(Path(directory)).load(name)


def _modified(path: str) -> tuple[int, int, int]:
    """What changes when a file is replaced (renamed over, or rewritten): one stat call."""
    try:
        found = os.stat(path)
        return found.st_ino, found.st_mtime_ns, found.st_size
    except OSError as error:
        raise ImproperlyConfigured(
            f"The signing certificate or key {path} cannot be read ({error.strerror}): check "
            "SEEDBANK_SIGNING_CERT and SEEDBANK_SIGNING_KEY."
        ) from None


def site_certificate_chains() -> list[bytes]:
    """Every chain this site has signed with: the current one and those rotated out."""
    chains = site_keyring().chains()
    current = site_credential().chain_pem
    return chains if current in chains else [*chains, current]


def site_trust() -> tuple[list[str], set[str]]:
    """The root of each of the site's chains (PEM: what a reader trusts to recognize its
    pictures, `engine.provenance.reading.read_picture(trust_anchors=...)`), and their signing
    certificates' serials (decimal, as C2PA readers print them): a trusted picture whose
    serial is one of these was signed here, with the current key or one rotated out."""
    anchors: list[str] = []
    serials: set[str] = set()
    for chain in site_certificate_chains():
        credential = SigningCredential(chain_pem=chain, key_pem=b"")
        if credential.anchor_pem not in anchors:
            anchors.append(credential.anchor_pem)
        serials.add(credential.serial_number)
    return anchors, serials


def site_trust_anchors() -> list[str]:
    return site_trust()[0]


def image_claim(*, image: Image, pixel_sha256: str, parent: Ingredient | None = None) -> Claim:
    """What the site states about a record's picture. `parent` is the file an imported picture
    came from (its own manifest, if any, stays inside ours)."""
    recipe = image.recipe_portable()
    # A record being stored for the first time has no reproduction yet (one query saved per
    # rendered picture); a restore, an import or a re-signing asks.
    first_store = image.status == Image.Status.PENDING
    last = None if first_store else image_last_reproduction(image=image)
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
    if manifest_action(stored, "image/png") == "c2pa.opened":
        parent = Ingredient(
            title=Path(image.image_file.name or "").name,
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
    old_name = image.image_file.name or ""
    # A new name, then the row, then the old file: readers never see half a file.
    image.image_file.save(
        f"{image.pk}-{image.pixel_sha256[:12]}.png", ContentFile(signed), save=False
    )
    Image.objects.filter(pk=image.pk).update(image_file=image.image_file.name)
    storage = image.image_file.storage
    transaction.on_commit(lambda: storage.delete(old_name))
    return True


def image_signature_missing(*, image: Image, trust_anchors: Sequence[str]) -> bool:
    """Whether a record's stored picture lacks a valid manifest from this site about this
    record (`trust_anchors`: site_trust_anchors()): stored before pictures were signed, signed
    by a credential this site no longer knows, or changed after signing. A file with no
    manifest chunk is answered without decoding it."""
    with image.image_file.open("rb") as handle:
        stored = bytes(handle.read())
    try:
        if all(kind != png_chunks.MANIFEST_CHUNK for kind, _ in png_chunks.chunks(stored)):
            return True
        report = read_picture(stored, trust_anchors=trust_anchors, max_pixels=1 << 40,
                              max_bytes=len(stored))  # fmt: skip
    except ValueError:  # not a well-formed picture: signing it again will say so
        return True
    found = report.credentials
    return not (
        found is not None
        and found.state == "trusted"
        and not found.tampered
        and isinstance(found.recipe, dict)
        and found.recipe.get("record") == image.pk
        and found.recipe.get("pixel_sha256") == image.pixel_sha256
    )


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
    "image_signature_missing",
    "image_signature_refresh",
    "image_signed_png",
    "site_certificate_chains",
    "site_credential",
    "site_credential_is_operators",
    "site_credential_rotate",
    "site_trust",
    "site_trust_anchors",
]
