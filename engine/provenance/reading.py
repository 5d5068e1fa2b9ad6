"""Any picture → what it says about itself: Content Credentials (C2PA), IPTC's source type in
XMP, a recipe in any tool's metadata, and its decoded pixels' sha256.

Hostile files are refused with UploadRejected (too many bytes or pixels, not a picture,
truncated); a malformed manifest or XMP is reported as such, never raised.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import c2pa
import numpy as np
from PIL import Image

from engine.imports.image_files import embedded_recipe
from engine.imports.source import RowRejected
from engine.messages import Message as M
from engine.messages import gettext_noop as _
from engine.provenance.signing import RECIPE_ASSERTION
from engine.provenance.xmp import digital_source_type
from engine.uploads import UploadRejected, open_upload

_MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# Validation failures that mean the picture's bytes changed after signing.
_TAMPERED = ("assertion.dataHash.mismatch", "assertion.boxesHash.mismatch", "assertion.bmffHash")
# A manifest over this many bytes is not read (C2PA manifests of a picture are KB, not MB).
_MAX_MANIFEST_JSON = 4_000_000


@dataclass(frozen=True)
class ContentCredentials:
    """The active C2PA manifest, as its reader validated it."""

    state: str  # "trusted" (a signer we recognize), "valid" (intact, signer unknown), "invalid"
    tampered: bool  # the picture changed after it was signed
    signer: str  # the certificate's common name
    issuer: str  # the certificate's organization
    serial_number: str  # decimal, as C2PA readers print it
    generator: str
    action: str
    digital_source_type: str
    ingredients: tuple[dict[str, Any], ...]
    recipe: dict[str, Any] | None  # Seedbank's assertion, if the manifest has one
    problems: tuple[str, ...]  # what failed validation (untrusted signers are not a problem)


@dataclass(frozen=True)
class PictureReport:
    media_type: str
    width: int
    height: int
    pixel_sha256: str
    credentials: ContentCredentials | None
    credentials_error: str  # a manifest was there but could not be read
    xmp_digital_source_type: str | None
    embedded_recipe: dict[str, Any] | None  # the recipe any tool wrote into the metadata
    embedded_recipe_error: str

    @property
    def tampered(self) -> bool:
        return self.credentials is not None and self.credentials.tampered

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def read_picture(
    data: bytes, *, trust_anchors: Sequence[str] = (), max_pixels: int, max_bytes: int
) -> PictureReport:
    """Everything `data` says about its origin; UploadRejected when it is not a picture this
    archive reads (PNG, JPEG, WebP within the limits, checked before decoding)."""
    picture = open_upload(io.BytesIO(data), max_bytes=max_bytes, max_pixels=max_pixels)
    media_type = _MEDIA_TYPES[str(picture.format)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            rgb = picture.convert("RGB")  # decodes: a truncated file fails here
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning):
        raise UploadRejected(M(_("The picture is damaged or truncated."))) from None
    pixels = hashlib.sha256(np.asarray(rgb).tobytes()).hexdigest()
    credentials, credentials_error = _credentials(data, media_type, trust_anchors, pixels)
    xmp = picture.info.get("xmp") or picture.info.get("XML:com.adobe.xmp")
    if isinstance(xmp, bytes):
        xmp = xmp.decode("utf-8", errors="replace")
    found, found_error = _embedded(picture)
    return PictureReport(
        media_type=media_type,
        width=picture.width,
        height=picture.height,
        pixel_sha256=pixels,
        credentials=credentials,
        credentials_error=credentials_error,
        xmp_digital_source_type=digital_source_type(xmp) if isinstance(xmp, str) else None,
        embedded_recipe=found,
        embedded_recipe_error=found_error,
    )


def manifest_action(data: bytes, media_type: str) -> str:
    """The first action of a file's active manifest ("c2pa.created", "c2pa.opened"…), or "":
    read from the manifest alone, without decoding the picture."""
    credentials, _ = _credentials(data, media_type, (), None)
    return credentials.action if credentials else ""


def _credentials(
    data: bytes, media_type: str, trust_anchors: Sequence[str], pixels: str | None
) -> tuple[ContentCredentials | None, str]:
    settings: dict[str, Any] = {}
    if trust_anchors:
        settings = {"trust": {"trust_anchors": "".join(trust_anchors)}}
    try:
        reader = c2pa.Reader(media_type, io.BytesIO(data), context=c2pa.Context.from_dict(settings))
        text = reader.json()
    except c2pa.C2paError.ManifestNotFound:
        return None, ""
    except c2pa.C2paError as error:
        return None, f"The Content Credentials cannot be read: {error}"
    if len(text) > _MAX_MANIFEST_JSON:
        return None, "The Content Credentials are too large to read."
    store = json.loads(text)
    manifest = store.get("manifests", {}).get(store.get("active_manifest") or "")
    if not isinstance(manifest, Mapping):
        return None, "The Content Credentials have no active manifest."
    failures = store.get("validation_results", {}).get("activeManifest", {}).get("failure", [])
    codes = [str(f.get("code", "")) for f in failures if isinstance(f, Mapping)]
    problems = tuple(
        str(f.get("explanation") or f.get("code"))
        for f in failures
        if isinstance(f, Mapping) and f.get("code") != "signingCredential.untrusted"
    )
    recipe = _assertion(manifest, RECIPE_ASSERTION)
    action = _first_action(manifest)
    signature = manifest.get("signature_info") or {}
    # Intact bytes whose recipe assertion names other pixels were re-encoded and re-signed by
    # someone else with our assertion copied in; either way the picture is not what was signed.
    moved = (
        pixels is not None
        and isinstance(recipe, Mapping)
        and recipe.get("pixel_sha256") not in (None, pixels)
    )
    state = str(store.get("validation_state") or "Invalid").lower()
    return (
        ContentCredentials(
            state=state if state in ("trusted", "valid") and not problems else "invalid",
            tampered=moved or any(code.startswith(_TAMPERED) for code in codes),
            signer=str(signature.get("common_name") or ""),
            issuer=str(signature.get("issuer") or ""),
            serial_number=str(signature.get("cert_serial_number") or ""),
            generator=_generator(manifest),
            action=str(action.get("action") or ""),
            digital_source_type=str(action.get("digitalSourceType") or ""),
            ingredients=tuple(
                {
                    "title": str(i.get("title") or ""),
                    "relationship": str(i.get("relationship") or ""),
                    "media_type": str(i.get("format") or ""),
                    "has_credentials": bool(i.get("active_manifest")),
                }
                for i in manifest.get("ingredients") or ()
                if isinstance(i, Mapping)
            ),
            recipe=dict(recipe) if isinstance(recipe, Mapping) else None,
            problems=problems,
        ),
        "",
    )


def _assertion(manifest: Mapping[str, Any], label: str) -> Any:
    for assertion in manifest.get("assertions") or ():
        if isinstance(assertion, Mapping) and assertion.get("label") == label:
            return assertion.get("data")
    return None


def _first_action(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    for label in ("c2pa.actions.v2", "c2pa.actions"):
        data = _assertion(manifest, label)
        actions = data.get("actions") if isinstance(data, Mapping) else None
        if actions and isinstance(actions[0], Mapping):
            return actions[0]  # type: ignore[no-any-return]
    return {}


def _generator(manifest: Mapping[str, Any]) -> str:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], Mapping):
        return " ".join(str(info[0].get(k) or "") for k in ("name", "version")).strip()
    return str(manifest.get("claim_generator") or "")


def _embedded(picture: Image.Image) -> tuple[dict[str, Any] | None, str]:
    try:
        found = embedded_recipe(picture, "the picture")
    except RowRejected as error:
        return None, str(error)
    if found is None:
        return None, ""
    fields = ("tool", "prompt", "negative_prompt", "seed", "steps", "guidance", "width")
    summary = {name: getattr(found, name) for name in (*fields, "height", "sampler")}
    summary.update(model_name=found.model_name, model_hash=found.model_hash)
    summary["loras"] = [lora.name for lora in found.loras]
    summary["unsupported"] = list(found.unsupported)
    return summary, ""


__all__ = ["ContentCredentials", "PictureReport", "manifest_action", "read_picture"]
