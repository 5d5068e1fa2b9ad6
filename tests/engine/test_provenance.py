"""engine.provenance without Django: XMP, PNG chunk surgery, signing and reading back."""

from __future__ import annotations

import io
import os
import stat
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from engine.png_files import pixel_sha256, png_bytes
from engine.provenance import png_chunks
from engine.provenance.credentials import (
    CredentialError,
    Keyring,
    credential_from_pem,
    make_self_signed,
)
from engine.provenance.reading import read_picture
from engine.provenance.signing import Claim, Ingredient, sign_png
from engine.provenance.xmp import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    digital_source_type,
    xmp_packet,
)
from engine.uploads import UploadRejected

LIMITS = {"max_pixels": 10_000_000, "max_bytes": 10_000_000}


@pytest.fixture(scope="module")
def credential():
    return make_self_signed("Seedbank test")


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8))


def claim_for(picture: Image.Image, **changes) -> Claim:
    values = {
        "title": "seedbank-1.png",
        "action": "c2pa.created",
        "digital_source_type": TRAINED_ALGORITHMIC_MEDIA,
        "software": "Seedbank 0.1.0",
        "recipe": {
            "recipe": {"prompt": "一只猫", "seed": 7},
            "pixel_sha256": pixel_sha256(picture),
        },
        "made_with": {"model": {"name": "scene", "digest": "ab" * 32}},
    }
    return Claim(**(values | changes))


def edit_one_pixel_keeping_chunks(png: bytes) -> bytes:
    """What an editor that keeps unknown chunks does: new image data, every other chunk kept."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).copy()
    pixels[0, 0, 0] ^= 1
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    new_data = [c for kind, c in png_chunks.chunks(buffer.getvalue()) if kind == b"IDAT"]
    parts, placed = [png_chunks.PNG_SIGNATURE], False
    for kind, chunk in png_chunks.chunks(png):
        if kind == b"IDAT":
            if not placed:
                parts.extend(new_data)
                placed = True
        else:
            parts.append(chunk)
    return b"".join(parts)


def test_xmp_states_the_source_type_and_reads_back() -> None:
    for kind in (TRAINED_ALGORITHMIC_MEDIA, COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA):
        packet = xmp_packet(digital_source_type=kind, creator_tool='Seedbank "0.1" <&>')
        assert digital_source_type(packet) == kind
        assert packet == xmp_packet(digital_source_type=kind, creator_tool='Seedbank "0.1" <&>')
    element_form = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"><Iptc4xmpExt:'
        f"DigitalSourceType>{TRAINED_ALGORITHMIC_MEDIA}</Iptc4xmpExt:DigitalSourceType>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    assert digital_source_type(element_form) == TRAINED_ALGORITHMIC_MEDIA


@pytest.mark.parametrize(
    "hostile",
    [
        # entity expansion ("billion laughs") and an external entity: read as no statement
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>',
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">&e;</x:xmpmeta>',
        "<x:xmpmeta",
        "",
    ],
)
def test_hostile_xmp_is_no_statement(hostile: str) -> None:
    assert digital_source_type(hostile) is None


def test_xmp_goes_in_before_the_image_data_and_replaces_an_old_packet(picture) -> None:
    png = png_bytes(picture, {"seedbank": "{}"})
    once = png_chunks.with_xmp(png, xmp_packet(digital_source_type="a", creator_tool="t"))
    twice = png_chunks.with_xmp(once, xmp_packet(digital_source_type="b", creator_tool="t"))
    kinds = [kind for kind, _ in png_chunks.chunks(twice)]
    assert kinds.count(b"iTXt") == 1 and kinds.index(b"iTXt") < kinds.index(b"IDAT")
    assert digital_source_type(png_chunks.xmp_text(twice) or "") == "b"
    assert Image.open(io.BytesIO(twice)).getxmp()  # Pillow reads it as XMP too
    assert pixel_sha256(Image.open(io.BytesIO(twice))) == pixel_sha256(picture)


@pytest.mark.parametrize("cut", [4, 20, -13])
def test_truncated_pngs_are_refused_by_the_chunk_reader(picture, cut: int) -> None:
    png = png_bytes(picture)
    with pytest.raises(png_chunks.NotAPng):
        png_chunks.unsigned(png[:cut])


def test_a_compressed_xmp_bomb_is_refused() -> None:
    bomb = zlib.compress(b"x" * (4 << 20))
    data = png_chunks.XMP_KEYWORD + b"\x00\x01\x00\x00\x00" + bomb
    chunk = (
        struct.pack(">I", len(data))
        + b"iTXt"
        + data
        + struct.pack(">I", zlib.crc32(b"iTXt" + data))
    )
    png = png_bytes(Image.new("RGB", (4, 4)))
    head, tail = png[:33], png[33:]  # after IHDR
    with pytest.raises(png_chunks.NotAPng, match="larger than 1 MiB"):
        png_chunks.xmp_text(head + chunk + tail)


def test_a_signed_png_validates_and_states_the_claim(picture, credential) -> None:
    png = png_bytes(
        picture,
        {"parameters": "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x48"},
    )
    signed = sign_png(png, claim_for(picture), credential)
    report = read_picture(signed, trust_anchors=[credential.anchor_pem], **LIMITS)
    found = report.credentials
    assert found is not None and found.state == "trusted" and not report.tampered
    assert found.serial_number == credential.serial_number
    assert found.signer == "Seedbank test Content Credentials" and found.issuer
    assert found.action == "c2pa.created"
    assert found.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert found.recipe == {
        "recipe": {"prompt": "一只猫", "seed": 7},
        "pixel_sha256": report.pixel_sha256,
    }
    assert report.xmp_digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert report.embedded_recipe and report.embedded_recipe["tool"] == "a1111"
    # Another site's anchors: intact but not recognized.
    other = make_self_signed("Elsewhere")
    assert read_picture(signed, trust_anchors=[other.anchor_pem], **LIMITS).credentials.state == (
        "valid"
    )
    assert report.pixel_sha256 == pixel_sha256(picture)  # metadata never moves the pixels


def test_only_the_manifest_varies_between_two_signings(picture, credential) -> None:
    png = png_bytes(picture, {"seedbank": '{"seed":7}'})
    first, second = (sign_png(png, claim_for(picture), credential) for _ in range(2))
    assert first != second  # a fresh manifest id and signature each time
    assert png_chunks.unsigned(first) == png_chunks.unsigned(second)
    # Re-signing replaces the manifest: one manifest store, one XMP packet.
    again = sign_png(first, claim_for(picture), credential)
    kinds = [kind for kind, _ in png_chunks.chunks(again)]
    assert kinds.count(png_chunks.MANIFEST_CHUNK) == 1 and kinds.count(b"iTXt") == 1
    assert png_chunks.unsigned(again) == png_chunks.unsigned(first)


def test_inputs_are_ingredients_of_a_composite(picture, credential) -> None:
    source = png_bytes(Image.new("RGB", (16, 16), (200, 10, 10)))
    claim = claim_for(
        picture,
        digital_source_type=COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
        ingredients=[
            Ingredient("init-image.png", "inputTo", source, "image/png"),
            Ingredient("mask.png", "inputTo", source, "image/png"),
        ],
    )
    signed = sign_png(png_bytes(picture), claim, credential)
    found = read_picture(signed, trust_anchors=[credential.anchor_pem], **LIMITS).credentials
    assert found.state == "trusted"
    assert [(i["title"], i["relationship"]) for i in found.ingredients] == [
        ("init-image.png", "inputTo"),
        ("mask.png", "inputTo"),
    ]


def test_an_opened_picture_keeps_its_own_credentials_inside(picture, credential) -> None:
    elsewhere = sign_png(png_bytes(picture), claim_for(picture), make_self_signed("Other tool"))
    claim = claim_for(
        picture,
        action="c2pa.opened",
        ingredients=[Ingredient("cat.png", "parentOf", elsewhere, "image/png")],
    )
    signed = sign_png(png_bytes(picture), claim, credential)
    found = read_picture(signed, trust_anchors=[credential.anchor_pem], **LIMITS).credentials
    assert found.action == "c2pa.opened"
    assert found.ingredients[0]["relationship"] == "parentOf"
    assert found.ingredients[0]["has_credentials"]


def test_an_edited_pixel_is_tampered(picture, credential) -> None:
    signed = sign_png(png_bytes(picture), claim_for(picture), credential)
    report = read_picture(edit_one_pixel_keeping_chunks(signed), **LIMITS)
    assert report.tampered and report.credentials.state == "invalid"
    assert report.credentials.problems


def test_a_copied_assertion_on_other_pixels_is_tampered(picture, credential) -> None:
    """Someone signs other pixels with our recipe assertion copied in: intact bytes, but the
    assertion names other pixels."""
    other = Image.new("RGB", picture.size, (0, 0, 0))
    signed = sign_png(png_bytes(other), claim_for(picture), make_self_signed("Copycat"))
    report = read_picture(signed, **LIMITS)
    assert report.credentials.state == "valid" and report.tampered


def test_a_garbage_manifest_is_reported_not_raised(picture, credential) -> None:
    signed = sign_png(png_bytes(picture), claim_for(picture), credential)
    parts = [png_chunks.PNG_SIGNATURE]
    for kind, chunk in png_chunks.chunks(signed):
        if kind == png_chunks.MANIFEST_CHUNK:
            data = os.urandom(len(chunk) - 12)
            chunk = bytes(chunk[:8]) + data + struct.pack(">I", zlib.crc32(kind + data))
        parts.append(chunk)
    report = read_picture(b"".join(parts), **LIMITS)
    assert report.credentials is None and report.credentials_error
    assert report.pixel_sha256 == pixel_sha256(picture)


def test_pictures_without_credentials_and_non_pictures(picture) -> None:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    report = read_picture(buffer.getvalue(), **LIMITS)
    assert report.media_type == "image/jpeg" and report.credentials is None
    assert not report.credentials_error and report.embedded_recipe is None
    for data in (b"", b"not a picture", png_bytes(picture)[:60]):
        with pytest.raises(UploadRejected):
            read_picture(data, **LIMITS)
    with pytest.raises(UploadRejected):
        read_picture(png_bytes(picture), max_pixels=100, max_bytes=10_000_000)


def test_an_operator_credential_is_checked(credential) -> None:
    assert credential_from_pem(credential.chain_pem, credential.key_pem).fingerprint == (
        credential.fingerprint
    )
    other = make_self_signed("Other")
    with pytest.raises(CredentialError, match="does not belong"):
        credential_from_pem(credential.chain_pem, other.key_pem)
    ca_only = credential.chain_pem.split(b"-----END CERTIFICATE-----\n", 1)[1]
    with pytest.raises(CredentialError):
        credential_from_pem(ca_only, credential.key_pem)
    with pytest.raises(CredentialError, match="cannot read"):
        credential_from_pem(b"nope", b"nope")


def test_the_keyring_makes_one_key_and_rotates_keeping_chains(tmp_path) -> None:
    ring = Keyring(tmp_path / "signing")
    first = ring.ensure("Site")
    assert ring.ensure("Site") == first
    (folder,) = [f for f in (tmp_path / "signing").iterdir() if not f.name.startswith(".")]
    assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "signing").stat().st_mode) == 0o700
    second = ring.rotate("Site")
    assert ring.current() == second != first
    assert ring.chains() == [first.chain_pem, second.chain_pem]
    assert not (folder / "key.pem").exists()
