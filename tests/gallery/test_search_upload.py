"""Image search bounds what it decodes (#26): a JPEG is decoded at a reduced scale (CLIP sees
224 pixels), a PNG or WebP over SEEDBANK_SEARCH_UPLOAD_MAX_PIXELS is refused from its header
with the limit named, and decompression bombs stay refused."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from PIL import Image as PILImage
from PIL import ImageFile

from engine.uploads import UploadRejected, open_upload
from gallery.forms.search import SEARCH_DECODE_SIDE, SearchForm

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_sd_path")]


def _file(size: tuple[int, int], image_format: str, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    PILImage.new(mode, size, "red" if mode == "RGB" else 0).save(buffer, format=image_format)
    return buffer.getvalue()


def _cleaned(data: bytes, name: str) -> object:
    form = SearchForm({}, {"image": SimpleUploadedFile(name, data)})
    assert form.is_valid(), form.errors
    return form.cleaned_data["image"]


def test_a_large_jpeg_is_decoded_at_a_reduced_scale():
    picture = _cleaned(_file((4000, 3000), "JPEG"), "photo.jpg")
    # 1/4 of each side (the largest DCT scale keeping both sides >= 448), never 4000×3000.
    assert picture.size == (1000, 750)
    assert min(picture.size) >= SEARCH_DECODE_SIDE


def test_a_large_png_is_reduced_once_decoded():
    picture = _cleaned(_file((2400, 1800), "PNG"), "shot.png")
    assert picture.size == (600, 450)  # reduced by 4: the shorter side stays >= 448


def test_small_images_are_left_as_they_are():
    assert _cleaned(_file((640, 480), "JPEG"), "a.jpg").size == (640, 480)
    assert _cleaned(_file((64, 64), "PNG"), "a.png").size == (64, 64)


@override_settings(SEEDBANK_SEARCH_UPLOAD_MAX_PIXELS=2_000_000)
def test_a_png_over_the_search_limit_is_refused_with_the_limit_named(client, monkeypatch):
    data = _file((2000, 1500), "PNG")
    decoded: list[object] = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    response = client.post("/search/", {"image": io.BytesIO(data)})
    assert response.status_code == 400
    message = response.context["form"].errors["image"][0]
    assert message == (
        "The image is 2000×1500 pixels; searching by image reads at most 2 megapixels of PNG or "
        "WebP (JPEG photos may be larger). Send a smaller copy or a JPEG."
    )
    assert message in response.content.decode()
    assert decoded == []  # refused from the header: nothing decoded
    monkeypatch.undo()
    webp = client.post("/search/", {"image": io.BytesIO(_file((2000, 1500), "WEBP"))})
    assert webp.status_code == 400 and "at most 2 megapixels" in webp.content.decode()


@override_settings(SEEDBANK_SEARCH_UPLOAD_MAX_PIXELS=2_000_000)
def test_a_jpeg_larger_than_the_png_limit_is_searched(client):
    response = client.post("/search/", {"image": io.BytesIO(_file((2400, 1800), "JPEG"))})
    assert response.status_code == 200 and "Images like your upload" in response.content.decode()


def test_decompression_bombs_stay_refused(client):
    bomb = io.BytesIO(_file((20000, 20000), "PNG", mode="1"))  # ~60 KB, 400 megapixels
    response = client.post("/search/", {"image": bomb})
    assert response.status_code == 400 and "megapixels" in response.content.decode()
    with pytest.raises(UploadRejected, match="too many pixels"):
        open_upload(
            io.BytesIO(_file((20000, 20000), "PNG", mode="1")),
            max_bytes=10_000_000,
            max_pixels=10**12,  # past Pillow's own bomb bound: Pillow refuses it
            min_side=SEARCH_DECODE_SIDE,
            max_decoded_pixels=10**12,
        )


def test_init_images_are_not_reduced():
    """Only search reduces: an init image's pixels are the recipe's."""
    picture = open_upload(
        io.BytesIO(_file((2400, 1800), "JPEG")), max_bytes=10_000_000, max_pixels=40_000_000
    )
    assert picture.size == (2400, 1800)
