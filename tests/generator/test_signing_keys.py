"""The site's signing credential (generator.services.signing): rotation seen by running
processes, the operator's certificate, and `manage.py signing_key` / `sign_pictures`."""

from __future__ import annotations

import datetime
import io
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from engine.png_files import pixel_sha256
from engine.provenance import png_chunks
from engine.provenance.credentials import Keyring, SigningCredential, make_self_signed
from engine.provenance.reading import PictureReport, read_picture
from generator.models import Image
from generator.services.records import image_store_pixels
from generator.services.signing import site_credential, site_trust_anchors
from tests.factories import ImageFactory
from tests.generator.keyring_race import ensure_after_barrier

pytestmark = pytest.mark.django_db
LIMITS = {"max_pixels": 10_000_000, "max_bytes": 10_000_000}


@pytest.fixture
def signing_dir(tmp_path, settings, media_root) -> Path:
    settings.SEEDBANK_SIGNING_DIR = tmp_path / "signing"
    settings.SEEDBANK_SIGNING_CERT = settings.SEEDBANK_SIGNING_KEY = ""
    return settings.SEEDBANK_SIGNING_DIR


def stored(image: Image) -> bytes:
    image.refresh_from_db()
    with image.image_file.open("rb") as handle:
        return bytes(handle.read())


def signed_record(color: tuple[int, int, int] = (120, 80, 40)) -> Image:
    picture = PILImage.new("RGB", (64, 64), color)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    image = ImageFactory()
    image_store_pixels(image=image, png=buffer.getvalue(), pixel_sha256=pixel_sha256(picture))
    return image


def report_of(image: Image, anchors: list[str] | None = None) -> PictureReport:
    anchors = site_trust_anchors() if anchors is None else anchors
    return read_picture(stored(image), trust_anchors=anchors, **LIMITS)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_rotation_keeps_old_pictures_valid_and_signs_new_ones_with_the_new_key(signing_dir):
    before = signed_record()
    old = site_credential()
    (old_folder,) = [f for f in signing_dir.iterdir() if not f.name.startswith(".")]
    assert stat.S_IMODE(signing_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((old_folder / "key.pem").stat().st_mode) == 0o600

    out = run("signing_key", "rotate")
    new = site_credential()
    assert new.fingerprint != old.fingerprint
    assert new.fingerprint in out and old.fingerprint in out
    after = signed_record((1, 2, 3))

    old_report, new_report = report_of(before), report_of(after)
    assert old_report.credentials.state == new_report.credentials.state == "trusted"
    assert old_report.credentials.serial_number == old.serial_number
    assert new_report.credentials.serial_number == new.serial_number
    # The old private key is gone; its chain stays (the archive still recognizes the picture).
    assert not (old_folder / "key.pem").exists()
    assert (old_folder / "chain.pem").read_bytes() == old.chain_pem
    new_folder = signing_dir / Keyring(signing_dir).current_name()
    assert stat.S_IMODE((new_folder / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(new_folder.stat().st_mode) == 0o700

    shown = run("signing_key", "show")
    assert "self-signed" in shown and "Retired chains: 1" in shown
    assert new.fingerprint in shown and old.fingerprint in shown and old.serial_number in shown


def test_a_rotation_by_another_process_takes_effect_without_a_restart(signing_dir):
    first = site_credential()
    assert site_credential() is site_credential() == first  # cached while nothing changes
    rotated = Keyring(signing_dir).rotate("Seedbank")  # as `signing_key rotate` elsewhere does
    assert site_credential() == rotated
    record = signed_record()
    assert report_of(record).credentials.serial_number == rotated.serial_number


def test_processes_ensuring_at_once_make_one_credential(tmp_path):
    # Spawned, not forked: a fork of a process running torch's and C2PA's threads can hang.
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    workers = [
        context.Process(
            target=ensure_after_barrier, args=(str(tmp_path / "ring"), barrier, results)
        )
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    fingerprints = {results.get(timeout=60) for _ in workers}
    for worker in workers:
        worker.join(timeout=60)
    assert len(fingerprints) == 1
    assert len([f for f in (tmp_path / "ring").iterdir() if not f.name.startswith(".")]) == 1


def write_pems(folder: Path, chain: bytes, key: bytes) -> tuple[str, str]:
    folder.mkdir(parents=True)
    (folder / "chain.pem").write_bytes(chain)
    (folder / "key.pem").write_bytes(key)
    return str(folder / "chain.pem"), str(folder / "key.pem")


def test_an_operator_certificate_signs_and_is_not_rotated(signing_dir, settings, tmp_path):
    operator = make_self_signed("Operator Inc")
    cert, key = write_pems(tmp_path / "operator", operator.chain_pem, operator.key_pem)
    settings.SEEDBANK_SIGNING_CERT, settings.SEEDBANK_SIGNING_KEY = cert, key
    record = signed_record()
    found = report_of(record, [operator.anchor_pem]).credentials
    assert found.state == "trusted" and found.serial_number == operator.serial_number
    assert site_trust_anchors() == [operator.anchor_pem]
    assert "operator-provided" in run("signing_key", "show")
    with pytest.raises(CommandError, match="operator's certificate"):
        run("signing_key", "rotate")
    assert not signing_dir.exists()  # the site made no key of its own


def _ca_credential() -> SigningCredential:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "A CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return SigningCredential(
        chain_pem=certificate.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def test_operator_files_that_cannot_sign_fail_clearly_at_first_use(signing_dir, settings, tmp_path):
    operator, other, ca = make_self_signed("Operator"), make_self_signed("Other"), _ca_credential()
    cases = {
        "mismatched": (operator.chain_pem, other.key_pem, "does not belong"),
        "ca": (ca.chain_pem, ca.key_pem, "is a CA"),
        "garbage": (b"not a certificate", operator.key_pem, "cannot read"),
    }
    for folder, (chain, key, message) in cases.items():
        cert_path, key_path = write_pems(tmp_path / folder, chain, key)
        settings.SEEDBANK_SIGNING_CERT, settings.SEEDBANK_SIGNING_KEY = cert_path, key_path
        with pytest.raises(ImproperlyConfigured, match=message):
            signed_record()
    settings.SEEDBANK_SIGNING_CERT = str(tmp_path / "absent.pem")
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        site_credential()
    settings.SEEDBANK_SIGNING_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="both"):
        site_credential()
    with pytest.raises(CommandError, match="both"):
        run("signing_key", "show")


def test_operator_files_replaced_in_place_take_effect(signing_dir, settings, tmp_path):
    first, second = make_self_signed("First"), make_self_signed("Second")
    cert, key = write_pems(tmp_path / "operator", first.chain_pem, first.key_pem)
    settings.SEEDBANK_SIGNING_CERT, settings.SEEDBANK_SIGNING_KEY = cert, key
    assert site_credential() == first
    # Replaced as a deployment would: new files renamed over the old.
    new_cert, new_key = write_pems(tmp_path / "new", second.chain_pem, second.key_pem)
    os.replace(new_cert, cert)
    os.replace(new_key, key)
    assert site_credential().fingerprint == second.fingerprint


def test_only_the_manifest_chunk_differs_between_two_signings_of_a_record(signing_dir):
    record = signed_record()
    first = stored(record)
    image_store_pixels(
        image=record, png=png_chunks.unsigned(first), pixel_sha256=record.pixel_sha256
    )
    second = stored(record)
    assert first != second and png_chunks.unsigned(first) == png_chunks.unsigned(second)


def unsigned_record() -> Image:
    """A record stored before pictures were signed: the factory's plain PNG."""
    image = ImageFactory()
    with image.image_file.open("rb") as handle:
        picture = PILImage.open(io.BytesIO(handle.read()))
        image.pixel_sha256 = pixel_sha256(picture)
    image.save(update_fields=["pixel_sha256"])
    return image


def test_sign_pictures_backfills_what_lacks_the_sites_credentials(signing_dir, settings):
    old = [unsigned_record() for _ in range(3)]
    current = signed_record()
    evicted = ImageFactory(image_file="")
    # Signed by someone else's credential: not this site's statement.
    foreign = unsigned_record()
    settings.SEEDBANK_SIGNING_DIR = signing_dir.parent / "elsewhere"
    image_store_pixels(image=foreign, png=stored(foreign), pixel_sha256=foreign.pixel_sha256)
    settings.SEEDBANK_SIGNING_DIR = signing_dir
    assert report_of(foreign).credentials.state == "valid"  # intact, signer not ours

    assert "Signed 4 picture(s); 1 already" in run("sign_pictures", "--batch-size", "2")
    for image in [*old, current, foreign]:
        found = report_of(image).credentials
        assert found.state == "trusted" and found.recipe["record"] == image.pk
    assert not Image.objects.get(pk=evicted.pk).image_file
    assert "Signed 0 picture(s); 5 already" in run("sign_pictures")  # idempotent

    old_serial = site_credential().serial_number
    run("signing_key", "rotate")
    assert "Signed 0 picture(s); 5 already" in run("sign_pictures")  # old chains still ours
    assert "Signed 5 picture(s); 0 already" in run("sign_pictures", "--all")
    serials = {report_of(image).credentials.serial_number for image in [*old, current, foreign]}
    assert serials == {site_credential().serial_number} != {old_serial}
