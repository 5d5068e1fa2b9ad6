"""Exports keep each picture's Content Credentials: the record zip and the collection zip carry
the stored signed PNG byte for byte (a render's), or a signed copy whose parent is the stored
file (an imported picture, whose file has no recipe chunks)."""

from __future__ import annotations

import io
import zipfile

import pytest

from archive.services.exports import export_zip
from engine.infotext import read_png_chunks
from engine.provenance.reading import read_picture
from gallery.models import Collection, CollectionItem
from generator.models import Image
from generator.services.signing import site_trust_anchors
from tests.archive.test_exports import rendered
from tests.archive.test_imports import run_import
from tests.engine.imports.test_image_files import A1111_TEXT, png

pytestmark = pytest.mark.django_db
LIMITS = {"max_pixels": 10_000_000, "max_bytes": 10_000_000}


@pytest.fixture(autouse=True)
def signing_dir(tmp_path, settings):
    settings.SEEDBANK_SIGNING_DIR = tmp_path / "signing"
    settings.SEEDBANK_SIGNING_CERT = settings.SEEDBANK_SIGNING_KEY = ""


def stored(image: Image) -> bytes:
    with image.image_file.open("rb") as handle:
        return bytes(handle.read())


def trusted(data: bytes):  # type: ignore[no-untyped-def]
    found = read_picture(data, trust_anchors=site_trust_anchors(), **LIMITS).credentials
    assert found is not None and found.state == "trusted" and not found.tampered
    return found


def test_both_zips_carry_the_stored_signed_pictures(
    client, model_version, media_root, sent, django_capture_on_commit_callbacks
):
    images = rendered(model_version, django_capture_on_commit_callbacks)
    collection = Collection.objects.create(title="Boats", slug="boats", is_public=True)
    for position, image in enumerate(images):
        CollectionItem.objects.create(collection=collection, image=image, position=position)

    record = images[0]
    response = client.get(f"/images/{record.pk}/export.zip")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        picture = archive.read(f"seedbank-{record.pk}/seedbank-{record.pk}-signed.png")
    assert picture == stored(record)
    assert trusted(picture).recipe["record"] == record.pk

    response = client.get("/collections/boats/export.zip")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    for image in images:
        picture = archive.read(f"images/{image.pk}.png")
        assert picture == stored(image)
        trusted(picture)


def test_an_imported_picture_is_exported_signed_with_its_recipe_chunks(
    tmp_path, model_version, media_root, sent, django_capture_on_commit_callbacks
):
    (tmp_path / "cat.png").write_bytes(png({"parameters": A1111_TEXT}))
    with django_capture_on_commit_callbacks(execute=True):
        run_import([tmp_path / "cat.png"])
    image = Image.objects.get()
    assert "seedbank" not in read_png_chunks(stored(image))
    buffer = io.BytesIO()
    export_zip([image], buffer)
    picture = zipfile.ZipFile(buffer).read(f"images/{image.pk}.png")
    assert "seedbank" in read_png_chunks(picture)
    found = trusted(picture)
    assert found.action == "c2pa.opened"
    assert [(i["relationship"], i["has_credentials"]) for i in found.ingredients] == [
        ("parentOf", True)
    ]
