"""Grid previews: written with a record's pixels, served like the record, backfilled."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from PIL import Image as PILImage

from generator.models import Image
from generator.selectors.records import media_visible
from generator.services.records import image_store_pixels
from tests.factories import ImageFactory, UserFactory

pytestmark = pytest.mark.django_db


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.linear_gradient("L").convert("RGB").resize((width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_large_picture_gets_both_widths_and_srcset_lists_them(media_root) -> None:
    image = ImageFactory(width=768, height=512)
    image_store_pixels(image=image, png=_png(768, 512), pixel_sha256="a" * 64)
    image.refresh_from_db()
    for field, size in ((image.thumbnail, (256, 171)), (image.thumbnail_large, (512, 341))):
        with PILImage.open(media_root / field.name) as preview:
            assert (preview.format, preview.size) == ("WEBP", size)
    assert image.grid_src == image.thumbnail.url
    assert image.grid_srcset == (
        f"{image.thumbnail.url} 256w, {image.thumbnail_large.url} 512w, {image.image_file.url} 768w"
    )


def test_storing_pixels_again_replaces_the_previews(media_root) -> None:
    image = ImageFactory(width=768, height=512)
    image_store_pixels(image=image, png=_png(768, 512), pixel_sha256="a" * 64)
    first = media_root / image.thumbnail_large.name
    image_store_pixels(image=image, png=_png(300, 200), pixel_sha256="b" * 64)
    image.refresh_from_db()
    assert not first.exists()  # the 512-wide preview of the old pixels is gone
    with PILImage.open(media_root / image.thumbnail_large.name) as preview:
        assert preview.size == (300, 200)


def test_previews_are_served_only_to_those_who_may_see_the_record(media_root) -> None:
    owner, stranger = UserFactory(), UserFactory()
    image = ImageFactory(width=768, height=512, owner=owner)
    image_store_pixels(image=image, png=_png(768, 512), pixel_sha256="c" * 64)
    for name in (image.thumbnail.name, image.thumbnail_large.name):
        assert media_visible(name=name, viewer=None)
    Image.objects.filter(pk=image.pk).update(hidden=True)
    for name in (image.thumbnail.name, image.thumbnail_large.name):
        assert not media_visible(name=name, viewer=stranger)
        assert media_visible(name=name, viewer=owner)


def test_backfill_writes_missing_previews_once(media_root) -> None:
    old = ImageFactory.create_batch(2)  # stored before previews existed: PNG only
    out = io.StringIO()
    call_command("previews", stdout=out)
    assert "Wrote previews for 2 record(s)." in out.getvalue()
    for image in old:
        image.refresh_from_db()
        assert image.thumbnail.name.endswith(".webp")
    out = io.StringIO()
    call_command("previews", stdout=out)
    assert "Wrote previews for 0 record(s)." in out.getvalue()
