"""An imported picture that carries Content Credentials keeps them: the stored record's manifest
opens the imported file, whose own manifest travels inside ours."""

from __future__ import annotations

import io
import json

import c2pa
import pytest
from PIL import Image as PILImage

from engine.png_files import pixel_sha256
from engine.provenance import png_chunks
from engine.provenance.credentials import make_self_signed
from engine.provenance.reading import read_picture
from engine.provenance.signing import Claim, sign_png
from engine.provenance.xmp import TRAINED_ALGORITHMIC_MEDIA
from generator.models import Image
from generator.services.signing import site_trust_anchors
from tests.archive.test_imports import run_import
from tests.engine.imports.test_image_files import A1111_TEXT, png

pytestmark = pytest.mark.django_db
LIMITS = {"max_pixels": 10_000_000, "max_bytes": 10_000_000}


@pytest.fixture
def signing_dir(tmp_path, settings):
    settings.SEEDBANK_SIGNING_DIR = tmp_path / "signing"
    settings.SEEDBANK_SIGNING_CERT = settings.SEEDBANK_SIGNING_KEY = ""


def signed_elsewhere(data: bytes) -> bytes:
    picture = PILImage.open(io.BytesIO(data))
    claim = Claim(
        title="cat.png",
        action="c2pa.created",
        digital_source_type=TRAINED_ALGORITHMIC_MEDIA,
        software="Other tool 2.0",
        recipe={"pixel_sha256": pixel_sha256(picture)},
    )
    return sign_png(data, claim, make_self_signed("Other tool"))


def stored(image: Image) -> bytes:
    with image.image_file.open("rb") as handle:
        return bytes(handle.read())


def test_an_imported_signed_picture_is_the_parent_of_the_stored_one(
    tmp_path, model_version, media_root, sent, signing_dir, django_capture_on_commit_callbacks
):
    original = signed_elsewhere(png({"parameters": A1111_TEXT}))
    (tmp_path / "cat.png").write_bytes(original)
    with django_capture_on_commit_callbacks(execute=True):
        run = run_import([tmp_path / "cat.png"])
    assert (run.imported, run.rejected) == (1, 0)
    data = stored(Image.objects.get())
    found = read_picture(data, trust_anchors=site_trust_anchors(), **LIMITS).credentials
    assert found is not None and found.state == "trusted" and not found.tampered
    assert found.action == "c2pa.opened"
    assert [(i["title"], i["relationship"], i["has_credentials"]) for i in found.ingredients] == [
        ("cat.png", "parentOf", True)
    ]
    store = json.loads(c2pa.Reader("image/png", io.BytesIO(data)).json())
    assert len(store["manifests"]) == 2  # the other tool's, inside ours


def test_pictures_without_credentials_or_with_broken_ones_are_opened_with_a_parent(
    tmp_path, model_version, media_root, sent, signing_dir, django_capture_on_commit_callbacks
):
    plain = png({"parameters": A1111_TEXT})
    # A manifest chunk no reader can parse: its pixels are the parent, and the import goes on.
    junk = png_chunks._chunk(png_chunks.MANIFEST_CHUNK, b"\0\0\0\x10jumb\0\0\0\x08c2pa")
    chunks = [c for _, c in png_chunks.chunks(png({"parameters": A1111_TEXT}, colour="blue"))]
    broken = png_chunks.PNG_SIGNATURE + b"".join([chunks[0], junk, *chunks[1:]])
    (tmp_path / "plain.png").write_bytes(plain)
    (tmp_path / "broken.png").write_bytes(broken)
    with django_capture_on_commit_callbacks(execute=True):
        run = run_import([tmp_path])
    assert (run.imported, run.rejected) == (2, 0)
    for image in Image.objects.all():
        found = read_picture(stored(image), trust_anchors=site_trust_anchors(), **LIMITS)
        # Another tool made it: Seedbank opened it, the file (or, when its manifest cannot be
        # read, its pixels) is the parent.
        assert found.credentials.state == "trusted" and found.credentials.action == "c2pa.opened"
        (parent,) = found.credentials.ingredients
        assert parent["relationship"] == "parentOf" and not parent["has_credentials"]
