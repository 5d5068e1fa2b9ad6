"""A collection's download (zip) and `manage.py export`, with the real tiny renders."""

from __future__ import annotations

import io
import json
import zipfile

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from gallery.models import Collection, CollectionItem
from tests.archive.test_exports import rendered

pytestmark = pytest.mark.django_db


@pytest.fixture
def boats(model_version, media_root, sent, django_capture_on_commit_callbacks):
    images = rendered(model_version, django_capture_on_commit_callbacks)
    collection = Collection.objects.create(title="Boats", slug="boats", is_public=True)
    for position, image in enumerate(images):
        CollectionItem.objects.create(collection=collection, image=image, position=position)
    return collection, images


def test_the_download_holds_each_picture_and_its_recipe(client, boats):
    _, images = boats
    page = client.get("/collections/boats/")
    assert b"/collections/boats/export.zip" in page.content
    response = client.get("/collections/boats/export.zip")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="boats.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    rows = [json.loads(line) for line in archive.read("recipes.jsonl").decode().splitlines()]
    assert [row["id"] for row in rows] == [image.pk for image in images]
    assert rows[0]["pixel_sha256"] == images[0].pixel_sha256
    assert {f"images/{image.pk}.png" for image in images} < set(archive.namelist())


def test_private_collections_do_not_download_and_exports_are_rate_limited(client, boats):
    Collection.objects.create(title="Drafts", slug="drafts", is_public=False)
    assert client.get("/collections/drafts/export.zip").status_code == 404
    assert client.post("/collections/boats/export.zip").status_code == 405
    with override_settings(SEEDBANK_RATE_EXPORT_PER_HOUR=1):
        assert client.get("/collections/boats/export.zip").status_code == 200
        assert client.get("/collections/boats/export.zip").status_code == 429


def test_export_command_writes_zip_and_parquet(tmp_path, boats):
    _, images = boats
    call_command("export", str(tmp_path / "boats.zip"), "--collection", "boats")
    assert len(zipfile.ZipFile(tmp_path / "boats.zip").namelist()) == 3
    call_command("export", str(tmp_path / "all.parquet"), "--all")
    table = pq.read_table(tmp_path / "all.parquet").to_pylist()
    assert [row["seed"] for row in table] == [image.seed for image in images]
    assert table[0]["sampler_name"] == "DPM++ 2M" and table[0]["sampler"] == 9
    with pytest.raises(CommandError, match=r"end in \.zip or \.parquet"):
        call_command("export", str(tmp_path / "x.csv"), "--all")
    with pytest.raises(CommandError, match="No public collection"):
        call_command("export", str(tmp_path / "x.zip"), "--collection", "nope")
