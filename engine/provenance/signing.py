"""A record's claim → its PNG with XMP and a signed C2PA manifest.

What is signed (see `Claim`): one action — `c2pa.created` for a render (its digital source
type says text to image or a composite with supplied pictures), `c2pa.opened` for a picture
imported from another tool — with Seedbank as the software agent; the pictures it came from
as ingredients (an img2img init image and mask are `inputTo`, an imported file is `parentOf`
and keeps its own manifest inside ours); and Seedbank's own assertion (`RECIPE_ASSERTION`):
the portable recipe, its digest, the models and resources by digest, the pixel sha256 and the
latest reproduction verdict.

Everything outside the manifest is the same bytes for the same picture and claim
(png_chunks.unsigned); the manifest varies with each signing (its id, the signature's nonce).
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import c2pa

from engine.provenance import png_chunks
from engine.provenance.credentials import SigningCredential
from engine.provenance.xmp import xmp_packet

RECIPE_ASSERTION = "org.seedbank.recipe"
# No thumbnail in the manifest: it would add a second copy of the picture (the 512² test
# picture went from 0.8 to 1.7 MB) and ~75 ms of encoding to every render. No validation of
# what was just signed (half the signing time at 64²): the manifest's shape is fixed here and
# the tests read every kind back; ingredients whose manifests C2PA cannot read are not passed
# (engine.provenance.presence).
_BUILDER_SETTINGS = {
    "builder": {"thumbnail": {"enabled": False}},
    "verify": {"verify_after_sign": False},
}


class SigningFailed(RuntimeError):
    """The C2PA library refused the manifest or the credential."""


@dataclass(frozen=True)
class Ingredient:
    title: str
    relationship: str  # "inputTo" (an img2img input) or "parentOf" (the imported file)
    data: bytes
    media_type: str  # "image/png", "image/jpeg", ...


@dataclass(frozen=True)
class Claim:
    title: str  # the file name people see
    action: str  # "c2pa.created" or "c2pa.opened"
    digital_source_type: str  # an IPTC URI (engine.provenance.xmp)
    software: str  # "Seedbank 0.1.0"
    recipe: Mapping[str, Any]  # the RECIPE_ASSERTION's data
    # What made it, by digest, in the action's parameters: {"model": {...}, "resources": [...]}
    made_with: Mapping[str, Any] = field(default_factory=dict)
    ingredients: Sequence[Ingredient] = field(default_factory=tuple)


def sign_png(png: bytes, claim: Claim, credential: SigningCredential) -> bytes:
    """The PNG with its XMP replaced and a new manifest signed for `claim` (any earlier
    manifest is dropped first: a re-signed record carries one manifest, the current one)."""
    name, _, version = claim.software.partition(" ")
    base = png_chunks.with_xmp(
        png,
        xmp_packet(digital_source_type=claim.digital_source_type, creator_tool=claim.software),
    )
    labels = [f"ingredient-{index}" for index in range(len(claim.ingredients))]
    action: dict[str, Any] = {
        "action": claim.action,
        "softwareAgent": {"name": name, **({"version": version} if version else {})},
        "digitalSourceType": claim.digital_source_type,
    }
    parameters = {f"org.seedbank.{key}": value for key, value in claim.made_with.items()}
    if labels:
        parameters["ingredientIds"] = labels
    if parameters:
        action["parameters"] = json.loads(json.dumps(parameters))
    manifest = {
        "claim_generator_info": [{"name": name, **({"version": version} if version else {})}],
        "title": claim.title,
        "format": "image/png",
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [action]}},
            {"label": RECIPE_ASSERTION, "data": json.loads(json.dumps(claim.recipe))},
        ],
    }
    try:
        builder = c2pa.Builder(manifest, context=c2pa.Context.from_dict(_BUILDER_SETTINGS))
        for label, ingredient in zip(labels, claim.ingredients, strict=True):
            builder.add_ingredient_from_stream(
                {
                    "title": ingredient.title,
                    "relationship": ingredient.relationship,
                    "label": label,
                },
                ingredient.media_type,
                io.BytesIO(ingredient.data),
            )
        signed = io.BytesIO()
        builder.sign(_signer(credential), "image/png", io.BytesIO(base), signed)
    except c2pa.C2paError as error:
        raise SigningFailed(f"C2PA signing failed: {error}") from None
    return signed.getvalue()


@functools.lru_cache(maxsize=4)
def _signer(credential: SigningCredential) -> c2pa.Signer:
    """One signer per credential and process (making one parses the chain and key)."""
    return c2pa.Signer.from_info(
        c2pa.C2paSignerInfo(
            alg=credential.algorithm.encode(),
            sign_cert=credential.chain_pem,
            private_key=credential.key_pem,
            ta_url=None,  # no time-stamp authority is reachable from a worker
        )
    )


__all__ = ["RECIPE_ASSERTION", "Claim", "Ingredient", "SigningFailed", "sign_png"]
