"""Check a picture (#28): the page, the API and the command read a picture's Content
Credentials and set it against the archive (same pixels, else CLIP near-duplicates), never
revealing hidden records, and refuse every hostile file with a 400."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import time
import zlib

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage
from PIL import ImageDraw

from engine import embedder
from engine.provenance import png_chunks
from engine.provenance.credentials import make_self_signed
from engine.provenance.signing import sign_png
from gallery.provenance import picture_check
from generator.models import RenderJob, Reproduction
from generator.services.records import image_store_pixels
from generator.services.signing import image_claim, site_credential_rotate
from search.models import EMBEDDING_DIM, ImageEmbedding
from search.selectors import active_model_name
from tests.engine.test_provenance import edit_one_pixel_keeping_chunks
from tests.factories import ImageFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def _scene(seed: int, size: int = 64) -> PILImage.Image:
    """A smooth picture (a gradient and a disc), like a render: JPEG keeps it recognizable."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)[None, :, None]
    base = rng.integers(0, 256, 3)[None, None, :]
    pixels = (base * (0.4 + 0.6 * ramp)).astype(np.uint8)
    picture = PILImage.fromarray(np.broadcast_to(pixels, (size, size, 3)).copy())
    draw = ImageDraw.Draw(picture)
    x, y = (int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
    r = size // 5
    draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return picture


def _png(picture: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _sha(picture: PILImage.Image) -> str:
    return hashlib.sha256(np.asarray(picture.convert("RGB")).tobytes()).hexdigest()


def _record(seed: int, **fields):
    """A ready record whose PNG is stored the way every picture is (signed), and embedded."""
    picture = _scene(seed)
    image = ImageFactory(**fields)
    image_store_pixels(image=image, png=_png(picture), pixel_sha256=_sha(picture))
    image.refresh_from_db()
    (vector,) = embedder.embed_images(str(settings.SEEDBANK_CLIP_PATH), [picture])
    ImageEmbedding.objects.create(
        image=image, model_name=active_model_name(), dim=EMBEDDING_DIM, embedding=vector
    )
    return image


def _stored(image) -> bytes:
    with image.image_file.open("rb") as handle:
        return bytes(handle.read())


@pytest.fixture
def archive(media_root, tiny_sd_path):
    """Three records; the first is the one the tests check."""
    return [_record(seed) for seed in (1, 2, 3)]


def _post(client, data: bytes, name: str = "picture.png", url: str = "/check/"):
    return client.post(url, {"picture": _upload(data, name)})


def _upload(data: bytes, name: str):
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def test_a_stored_picture_is_in_the_archive_and_signed_by_this_site(client, archive) -> None:
    image = archive[0]
    response = _post(client, _stored(image))
    assert response.status_code == 200
    check = response.context["check"]
    assert check.signed_by_this_site and not check.report.tampered
    assert check.in_archive == "pixels" and check.record == image
    assert check.recipe_source == "credentials"
    assert check.recipe["seed"] == image.seed
    body = response.content.decode()
    assert "Signed by this site, and intact." in body
    assert f'href="/images/{image.pk}/"' in body

    api = client.post("/api/v1/provenance", {"picture": _upload(_stored(image), "a.png")})
    assert api.status_code == 200
    document = api.json()
    assert document["signed_by_this_site"] is True and document["tampered"] is False
    assert document["in_archive"] == "pixels"
    assert document["matches"] == [{"id": image.pk, "how": "pixels", "cosine": None}]
    assert document["credentials"]["record"] == image.pk
    assert document["pixel_sha256"] == image.pixel_sha256
    assert document["reproduction"] is None


def test_stripped_pixels_are_found_by_their_digest(client, archive) -> None:
    image = archive[0]
    stripped = _png(PILImage.open(io.BytesIO(_stored(image))).convert("RGB"))
    assert png_chunks.MANIFEST_CHUNK not in stripped
    check = picture_check(data=stripped, viewer=None)
    assert check.report.credentials is None and not check.signed_by_this_site
    assert check.in_archive == "pixels" and check.record == image
    assert check.recipe_source == "record" and check.recipe == image.recipe_portable()


def test_a_reencoded_jpeg_is_a_near_duplicate_with_its_cosine(client, archive) -> None:
    image = archive[0]
    buffer = io.BytesIO()
    PILImage.open(io.BytesIO(_stored(image))).convert("RGB").save(buffer, "JPEG", quality=85)
    check = picture_check(data=buffer.getvalue(), viewer=None)
    assert check.report.media_type == "image/jpeg"
    assert check.in_archive == "near-duplicate"
    assert check.matches[0].image == image
    assert check.near_duplicate_bound is not None
    assert 1.0 >= check.matches[0].cosine >= check.near_duplicate_bound
    response = client.post("/api/v1/provenance", {"picture": _upload(buffer.getvalue(), "a.jpg")})
    first = response.json()["matches"][0]
    assert first["id"] == image.pk and first["how"] == "near-duplicate"
    assert first["cosine"] == pytest.approx(check.matches[0].cosine, abs=1e-6)


def test_a_random_picture_is_not_found(client, archive) -> None:
    noise = PILImage.fromarray(np.random.default_rng(9).integers(0, 256, (64, 64, 3), np.uint8))
    response = _post(client, _png(noise))
    assert response.status_code == 200
    check = response.context["check"]
    assert check.in_archive == "" and check.matches == [] and check.record is None
    assert check.report.credentials is None and check.recipe is None
    assert "Not found among the records you can see." in response.content.decode()


def test_a_one_pixel_edit_keeping_the_manifest_is_tampered(client, archive) -> None:
    image = archive[0]
    edited = edit_one_pixel_keeping_chunks(_stored(image))
    assert png_chunks.MANIFEST_CHUNK in edited
    response = _post(client, edited)
    assert response.status_code == 200
    check = response.context["check"]
    assert check.report.tampered and not check.signed_by_this_site
    assert check.in_archive != "pixels"
    assert "The picture was changed after it was signed" in response.content.decode()
    api = client.post("/api/v1/provenance", {"picture": _upload(edited, "e.png")}).json()
    assert api["tampered"] is True and api["signed_by_this_site"] is False


def test_hidden_records_are_not_revealed_to_others(client, archive, staff_user, user) -> None:
    image = archive[0]
    image.hidden = True
    image.save(update_fields=["hidden"])
    data = _stored(image)
    for viewer in (None, user):
        if viewer is not None:
            client.force_login(viewer)
        response = _post(client, data)
        check = response.context["check"]
        # Its own credentials still say who signed it, but the archive knows no such record.
        assert check.signed_by_this_site
        assert check.in_archive == "" and check.record is None and check.claimed_record is None
        assert image.pk not in [m.image.pk for m in check.matches]
        assert f"/images/{image.pk}/" not in response.content.decode()
        api = client.post("/api/v1/provenance", {"picture": _upload(data, "h.png")}).json()
        assert api["in_archive"] is None and api["matches"] == []
        assert api["reproduction"] is None
    client.force_login(staff_user)
    staff = _post(client, data).context["check"]
    assert staff.in_archive == "pixels" and staff.record == image


def test_staff_can_queue_a_verification_of_the_match(
    client, model_version, sent, staff_user, django_capture_on_commit_callbacks
):
    picture = _scene(5)
    image = ImageFactory(
        model_version=model_version,
        model_name=str(model_version),
        model_digest=model_version.weights_digest,
    )
    image_store_pixels(image=image, png=_png(picture), pixel_sha256=_sha(picture))
    image.refresh_from_db()
    data = _stored(image)
    visitor = _post(client, data).content.decode()
    assert 'data-testid="queue-verification"' not in visitor
    client.force_login(staff_user)
    response = _post(client, data)
    assert response.context["check"].can_verify
    assert f'action="/check/verify/{image.pk}/"' in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        queued = client.post(f"/check/verify/{image.pk}/")
    assert queued.status_code == 302 and queued["Location"] == f"/images/{image.pk}/"
    reproduction = Reproduction.objects.get(image=image)
    assert reproduction.job.kind == RenderJob.Kind.REPRODUCE
    assert sent and sent[0][0] == "generator.tasks.run_reproduction"
    # Once a verdict is in, the check reports it.
    Reproduction.objects.filter(pk=reproduction.pk).update(
        verdict=Reproduction.Verdict.BIT_IDENTICAL, finished_at=image.created_at
    )
    api = client.post("/api/v1/provenance", {"picture": _upload(data, "v.png")}).json()
    assert api["reproduction"]["verdict"] == "bit-identical"
    assert api["reproduction"]["record"] == image.pk


def test_a_rotated_out_key_is_still_this_sites_and_another_signer_is_not(
    archive, settings, tmp_path
) -> None:
    settings.SEEDBANK_SIGNING_DIR = tmp_path / "signing"
    image = _record(4)
    before = _stored(image)
    site_credential_rotate()
    after = picture_check(data=before, viewer=None)
    assert after.signed_by_this_site and after.record == image
    other = make_self_signed("Someone else")
    png = png_chunks.unsigned(before)
    foreign = sign_png(png, image_claim(image=image, pixel_sha256=image.pixel_sha256), other)
    check = picture_check(data=foreign, viewer=None)
    assert check.report.credentials is not None and not check.report.tampered
    assert check.report.credentials.state == "valid" and not check.signed_by_this_site
    assert check.in_archive == "pixels"  # the same pixels, whoever signed them


def test_visitors_cannot_queue_verifications(client, archive, user) -> None:
    image = archive[0]
    assert client.post(f"/check/verify/{image.pk}/").status_code == 302  # to sign in
    client.force_login(user)
    assert client.post(f"/check/verify/{image.pk}/").status_code == 403
    assert not Reproduction.objects.exists()


def _garbage_manifest(png: bytes) -> bytes:
    parts = [png_chunks.PNG_SIGNATURE]
    for kind, chunk in png_chunks.chunks(png):
        if kind == png_chunks.MANIFEST_CHUNK:
            data = os.urandom(len(chunk) - 12)
            chunk = bytes(chunk[:8]) + data + struct.pack(">I", zlib.crc32(kind + data))
        parts.append(bytes(chunk))
    return b"".join(parts)


def test_a_garbage_manifest_cannot_be_read_but_the_picture_is_checked(client, archive) -> None:
    image = archive[0]
    response = _post(client, _garbage_manifest(_stored(image)))
    assert response.status_code == 200
    check = response.context["check"]
    assert check.report.credentials is None and check.report.credentials_error
    assert check.in_archive == "pixels"  # the pixels are untouched
    assert "cannot be read" in response.content.decode()


def _bomb() -> bytes:
    buffer = io.BytesIO()
    PILImage.new("1", (20000, 20000), 0).save(buffer, format="PNG")  # ~60 KB, 400 megapixels
    return buffer.getvalue()


def _jpeg(picture: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


HOSTILE = {
    "bomb": (_bomb, "megapixels"),
    "truncated-png": (lambda: _png(_scene(7, 256))[:600], "Seedbank can read"),
    "truncated-jpeg": (lambda: _jpeg(_scene(7, 256))[:-200], "Seedbank can read"),
    "random-bytes": (lambda: os.urandom(4096), "Seedbank can read"),
    "empty": (lambda: b"", "empty"),
    "non-image": (lambda: b"%PDF-1.4\n" + b"0" * 200, "Seedbank can read"),
    "oversized": (lambda: b"\x89PNG\r\n\x1a\n" + b"\0" * 1_100_000, "larger than 1 MB"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_files_get_a_clear_400(client, media_root, tiny_sd_path, settings, kind) -> None:
    make, words = HOSTILE[kind]
    data = make()
    if kind == "oversized":
        settings.SEEDBANK_UPLOAD_MAX_BYTES = 1_000_000
    page = _post(client, data)
    assert page.status_code == 400
    errors = page.context["form"].errors["picture"]
    assert any(words in error for error in errors), errors
    assert 'data-testid="check-error"' in page.content.decode()
    api = client.post("/api/v1/provenance", {"picture": _upload(data, "x.png")})
    assert api.status_code == 400
    message = " ".join(api.json()["errors"]["picture"])
    assert words.lower() in message.lower(), message


def test_a_request_without_a_file_is_a_400(client, media_root) -> None:
    assert client.post("/check/", {}).status_code == 400
    assert client.post("/api/v1/provenance", {}).status_code == 400


def test_checks_are_rate_limited(client, archive, settings) -> None:
    settings.SEEDBANK_RATE_SEARCH_PER_MINUTE = 2
    data = _stored(archive[0])
    assert _post(client, data).status_code == 200
    assert client.post("/api/v1/provenance", {"picture": _upload(data, "a.png")}).status_code == 200
    page = _post(client, data)
    assert page.status_code == 429 and "Too many picture checks" in page.content.decode()
    api = client.post("/api/v1/provenance", {"picture": _upload(data, "a.png")})
    assert api.status_code == 429 and api.json()["error"].startswith("Too many picture checks")
    assert int(api["Retry-After"]) > 0


def test_the_page_is_linked_and_checks_a_record_in_place(client, archive) -> None:
    image = archive[0]
    assert client.get("/check/").status_code == 200
    assert 'href="/check/"' in client.get("/").content.decode()
    detail = client.get(f"/images/{image.pk}/").content.decode()
    assert f'href="/check/?image={image.pk}"' in detail
    in_place = client.get(f"/check/?image={image.pk}")
    assert in_place.status_code == 200 and in_place.context["check"].signed_by_this_site
    for unknown in ("999999", "9" * 30, "x"):
        assert client.get(f"/check/?image={unknown}").status_code == 404


def test_the_api_is_documented(client) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/provenance"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "429"}
    assert "multipart/form-data" in operation["requestBody"]["content"]


def test_the_command_prints_the_report(archive, tmp_path, capsys) -> None:
    image = archive[0]
    good = tmp_path / "good.png"
    good.write_bytes(_stored(image))
    call_command("provenance", str(good))
    out = capsys.readouterr().out
    assert "signed by this site, intact" in out and f"#{image.pk}" in out
    call_command("provenance", "--json", str(good))
    document = json.loads(capsys.readouterr().out)
    assert document["file"] == str(good) and document["signed_by_this_site"] is True
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nothing")
    with pytest.raises(CommandError, match="1 of 2 files"):
        call_command("provenance", "--json", str(good), str(bad))


def test_check_latency_for_a_512_png_is_reported(client, archive, capsys) -> None:
    """Not a bound: prints how long a check of a signed 512² PNG takes here."""
    picture = _scene(11, 512)
    image = ImageFactory(width=512, height=512)
    image_store_pixels(image=image, png=_png(picture), pixel_sha256=_sha(picture))
    image.refresh_from_db()
    data = _stored(image)
    picture_check(data=data, viewer=None)  # warm: CLIP and the keyring load once per process
    started = time.perf_counter()
    check = picture_check(data=data, viewer=None)
    exact = time.perf_counter() - started
    stripped = _jpeg(picture)
    started = time.perf_counter()
    near = picture_check(data=stripped, viewer=None)
    clip = time.perf_counter() - started
    assert check.in_archive == "pixels" and near.report.media_type == "image/jpeg"
    with capsys.disabled():
        print(
            f"\ncheck of a signed 512² PNG: {exact * 1000:.0f} ms; "
            f"512² JPEG (CLIP) {clip * 1000:.0f} ms"
        )
