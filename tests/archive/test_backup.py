"""Backups, restores and the archive check (archive.services.backup / restore, archive.integrity)
against the real embedded Postgres: a restore goes into a second, empty database on the same
server, run as an operator would (`manage.py restore` in its own process, DATABASE_URL, fresh
media and models folders)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from PIL import Image as PILImage

import archive.services.backup as backup_module
from archive.integrity import CHANGED, MISSING, STRAY, archive_check
from archive.services.backup import backup_create
from archive.services.restore import RestoreRefused, backup_restore
from config.embedded import database_url
from engine.bundle import MANIFEST
from engine.png_files import pixel_sha256, png_bytes
from engine.resources import file_sha256
from engine.weights import weights_digest
from generator.models import Image, RenderJob, Reproduction, SourceImage
from generator.services.records import image_evict, image_store_pixels, source_image_store
from generator.services.resources import resource_add
from search.models import EMBEDDING_DIM, ImageEmbedding
from tests.factories import ImageFactory, ModelVersionFactory

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_SD = "seedbank-scenes-sd"

pytestmark = pytest.mark.django_db(transaction=True)  # pg_dump sees only committed rows


@pytest.fixture
def media(tmp_path, media_root):
    """A media folder of this test's own: the check reads the whole folder."""
    folder = tmp_path / "media"
    folder.mkdir()
    with override_settings(MEDIA_ROOT=str(folder)):
        yield folder


def _picture(seed: int, size: int = 64) -> PILImage.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return PILImage.fromarray(pixels, "RGB")


def _record(model_version, seed: int, **fields) -> Image:
    """A ready record whose PNG, previews and pixel digest are real."""
    image = ImageFactory(model_version=model_version, seed=seed, image_file="", **fields)
    picture = _picture(seed, size=fields.get("width", 64))
    image_store_pixels(image=image, png=png_bytes(picture), pixel_sha256=pixel_sha256(picture))
    return image


def _reproduced(image: Image) -> None:
    """A finished bit-identical check, which is what lets a record be evicted."""
    job = RenderJob.objects.create(kind=RenderJob.Kind.REPRODUCE, status=RenderJob.Status.DONE)
    Reproduction.objects.create(
        image=image,
        job=job,
        verdict=Reproduction.Verdict.BIT_IDENTICAL,
        pixel_sha256=image.pixel_sha256,
        finished_at=timezone.now(),
    )


@pytest.fixture
def archive_rows(media, model_version, lora_resource, tiny_resource_files, tmp_path):
    """A small archive: records (one wide enough for two previews, one evicted), an init image,
    an embedding, a model under var/models, a shipped model, a LoRA under var/models and a VAE
    registered in place elsewhere (in-house weights that exist nowhere else)."""
    records = [_record(model_version, seed) for seed in range(4)]
    records.append(_record(model_version, 99, width=320, height=320))
    evicted = _record(model_version, 7)
    _reproduced(evicted)
    image_evict(image=evicted)
    source = source_image_store(picture=_picture(5), kind=SourceImage.Kind.INIT, owner=None)
    ImageEmbedding.objects.create(
        image=records[0], model_name="tiny", dim=EMBEDDING_DIM, embedding=[0.5] * EMBEDDING_DIM
    )
    elsewhere = tmp_path / "in-house" / "house-vae.safetensors"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(tiny_resource_files["vae"].read_bytes())
    vae = resource_add(path=elsewhere, kind="vae", name="house-vae")
    shipped = ModelVersionFactory(
        name="scenes", path=str(REPO_ROOT / "models" / SHIPPED_SD), weights_digest=_shipped_digest()
    )
    return {"records": [*records, evicted], "evicted": evicted, "source": source, "vae": vae,
            "lora": lora_resource, "model": model_version, "shipped": shipped}  # fmt: skip


def _shipped_digest() -> str:
    for line in (REPO_ROOT / "models" / "DIGESTS").read_text().splitlines():
        digest, name = line.split()
        if name == SHIPPED_SD:
            return digest
    raise AssertionError(f"{SHIPPED_SD} is not in models/DIGESTS")


@pytest.fixture
def empty_database():
    """A second, empty database on the same server, dropped afterwards."""
    name = f"restore_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    target = {**connection.settings_dict, "NAME": name}
    yield target
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _manage(*args: str, target: dict, home: Path) -> subprocess.CompletedProcess[str]:
    """manage.py in its own process, pointed at `target` and at folders under `home`."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(target),
        "CELERY_BROKER_URL": "memory://",
        "SEEDBANK_VAR_DIR": str(home / "var"),
        "MEDIA_ROOT": str(home / "media"),
        "SEEDBANK_MODELS_DIR": str(home / "models"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _query(target: dict, sql: str) -> list[tuple]:
    with psycopg.connect(database_url(target)) as conn:
        return conn.execute(sql).fetchall()


def _tree(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): file_sha256(path)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _manifest(backup: Path) -> dict:
    with tarfile.open(backup) as tar:
        member = tar.extractfile(MANIFEST)
        assert member is not None
        return json.loads(member.read())


# --- backup and restore -----------------------------------------------------------------------


def test_a_backup_restores_into_an_empty_database_with_every_file_and_digest(
    archive_rows, media, tmp_path, empty_database
):
    backup = tmp_path / "backups" / "seedbank.tar"
    result = backup_create(out=backup)
    assert result.path == backup and backup.is_file()
    assert not backup.with_name("seedbank.tar.partial").exists()
    manifest = _manifest(backup)
    names = {item["name"] for item in manifest["files"]}
    assert manifest["database"]["tables"]["generator_image"] == 6
    assert manifest["database"]["pg_dump"].startswith("pg_dump (PostgreSQL) 16")
    # Every media file, with the sha256 of its bytes.
    assert {f"media/{name}" for name in _tree(media)} <= names
    for item in manifest["files"]:
        if item["name"].startswith("media/"):
            assert item["sha256"] == file_sha256(media / item["name"].removeprefix("media/"))
    # In-house weights are copied; the shipped model is named by its digest only.
    places = {item["label"]: item for item in manifest["models"] + manifest["resources"]}
    assert places["tiny-sd@seed0"]["place"] == "models-dir"
    assert places["scenes@main"]["place"] == "shipped" and "stored" not in places["scenes@main"]
    assert places["vae house-vae@main"]["place"] == "external"
    assert not any(name.startswith(f"models/{archive_rows['shipped'].pk}/") for name in names)
    assert f"resources/{archive_rows['vae'].pk}/house-vae.safetensors" in names

    home = tmp_path / "restored"
    restored = _manage("restore", str(backup), target=empty_database, home=home)
    assert restored.returncode == 0, restored.stderr
    assert "records 6" in restored.stdout

    # The same rows, the same pixels, the same files.
    before = sorted(Image.objects.values_list("pk", "pixel_sha256", "image_file", "thumbnail"))
    after = _query(
        empty_database,
        "SELECT id, pixel_sha256, image_file, thumbnail FROM generator_image ORDER BY id",
    )
    assert after == before
    for pk, digest, name, _ in after:
        if name:
            with PILImage.open(home / "media" / name) as decoded:
                assert pixel_sha256(decoded) == digest, pk
    assert _tree(home / "media") == _tree(media)
    assert _query(empty_database, "SELECT count(*) FROM search_imageembedding") == [(1,)]
    # Model files live under the new models folder, and the rows say so.
    paths = dict(_query(empty_database, "SELECT name, path FROM generator_modelversion"))
    assert paths["tiny-sd"] == str(home / "models" / "tiny-sd")
    assert weights_digest(Path(paths["tiny-sd"])) == archive_rows["model"].weights_digest
    assert paths["scenes"] == archive_rows["shipped"].path
    resources = dict(_query(empty_database, "SELECT name, path FROM generator_resource"))
    house = Path(resources["house-vae"])
    assert house == home / "models" / "restored" / f"{archive_rows['vae'].pk}-house-vae.safetensors"
    assert file_sha256(house) == archive_rows["vae"].sha256
    assert file_sha256(Path(resources["tiny-lora"])) == archive_rows["lora"].sha256

    # And the restored archive is whole by its own check (pixels decoded, weights hashed).
    checked = _manage("check_archive", target=empty_database, home=home)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_tampered_file_fails_the_restore_naming_it(archive_rows, tmp_path, empty_database):
    backup = tmp_path / "seedbank.tar"
    backup_create(out=backup)
    victim = f"media/{archive_rows['records'][2].image_file.name}"
    with tarfile.open(backup) as tar:
        offset = tar.getmember(victim).offset_data
    with backup.open("r+b") as handle:
        handle.seek(offset + 100)
        byte = handle.read(1)
        handle.seek(offset + 100)
        handle.write(bytes([byte[0] ^ 0xFF]))

    home = tmp_path / "restored"
    restored = _manage("restore", str(backup), target=empty_database, home=home)
    assert restored.returncode != 0
    assert victim in restored.stderr and "do not match its manifest" in restored.stderr
    # Nothing was written: no tables, no media.
    assert _query(empty_database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [
        (0,)
    ]
    assert not (home / "media").exists() or not any((home / "media").rglob("*.png"))


def test_a_restore_refuses_a_database_that_is_not_empty(archive_rows, tmp_path):
    backup = tmp_path / "seedbank.tar"
    backup_create(out=backup)
    with pytest.raises(RestoreRefused, match="is not empty"):
        backup_restore(source=backup)


def test_a_backup_never_overwrites_one(archive_rows, tmp_path):
    backup = tmp_path / "seedbank.tar"
    backup.write_bytes(b"yesterday's")
    with pytest.raises(CommandError, match="exists already"):
        call_command("backup", str(backup))
    assert backup.read_bytes() == b"yesterday's"


def test_the_site_writing_during_a_backup_leaves_it_whole(
    archive_rows, tmp_path, empty_database, monkeypatch
):
    """The dump has a record with its image; by the time files are copied the image is evicted
    and a new record is stored. The restored record is evicted too, with the previews it has
    now; the new record is not in the dump, and its files are not in the backup."""
    record = archive_rows["records"][4]  # the wide one: two previews
    _reproduced(record)
    dumped = backup_module.backup_snapshot
    late: list[Image] = []

    def serving_after_the_dump(**kwargs):
        snapshot = dumped(**kwargs)
        image_evict(image=Image.objects.get(pk=record.pk))
        late.append(_record(archive_rows["model"], 4321))
        return snapshot

    monkeypatch.setattr(backup_module, "backup_snapshot", serving_after_the_dump)
    backup = tmp_path / "seedbank.tar"
    backup_create(out=backup)
    manifest = _manifest(backup)
    (fixup,) = manifest["fixups"]
    assert (fixup["table"], fixup["pk"]) == ("generator_image", record.pk)
    assert fixup["columns"]["image_file"] == "" and fixup["columns"]["evicted_at"]
    assert manifest["missing"] == []
    names = {item["name"] for item in manifest["files"]}
    assert f"media/{late[0].image_file.name}" not in names
    assert f"media/{late[0].thumbnail.name}" not in names

    home = tmp_path / "restored"
    restored = _manage("restore", str(backup), target=empty_database, home=home)
    assert restored.returncode == 0, restored.stderr
    ((image_file, evicted_at, thumbnail),) = _query(
        empty_database,
        f"SELECT image_file, evicted_at, thumbnail FROM generator_image WHERE id = {record.pk}",
    )
    assert image_file == "" and evicted_at is not None
    assert (home / "media" / thumbnail).is_file()
    assert _query(
        empty_database, f"SELECT count(*) FROM generator_image WHERE id = {late[0].pk}"
    ) == [(0,)]
    checked = _manage("check_archive", "--quick", target=empty_database, home=home)
    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- the archive check ------------------------------------------------------------------------


def test_the_check_passes_a_whole_archive(archive_rows):
    assert archive_check() == []
    call_command("check_archive", stdout=io.StringIO())


def test_the_check_finds_a_deleted_a_stray_and_a_changed_file(archive_rows, media):
    records = archive_rows["records"]
    deleted = records[0].image_file.name
    (media / deleted).unlink()
    stray = media / "images" / "left-behind.png"
    stray.write_bytes(png_bytes(_picture(1)))
    changed = records[1].image_file.name
    (media / changed).write_bytes(png_bytes(_picture(1234)))  # a valid PNG, other pixels
    lora = Path(archive_rows["lora"].path)
    original_lora = lora.read_bytes()
    try:
        lora.write_bytes(original_lora[:-1] + bytes([original_lora[-1] ^ 1]))
        problems = {(p.kind, p.subject) for p in archive_check()}
        quick = {(p.kind, p.subject) for p in archive_check(quick=True)}
    finally:
        lora.write_bytes(original_lora)
    assert problems == {
        (MISSING, deleted),
        (STRAY, "images/left-behind.png"),
        (CHANGED, changed),
        (CHANGED, str(lora)),
    }
    # Without decoding or hashing, only what is missing or left behind shows.
    assert quick == {(MISSING, deleted), (STRAY, "images/left-behind.png")}
    out = io.StringIO()
    with pytest.raises(CommandError, match="3 problem") as raised:
        call_command("check_archive", stdout=out)
    assert raised.value.returncode == 1
    assert deleted in out.getvalue() and changed in out.getvalue()


def test_the_check_finds_missing_model_folders_and_pixels(archive_rows, media):
    ModelVersionFactory(name="gone", path=str(media / "no-such-model"))
    record = archive_rows["records"][3]
    Image.objects.filter(pk=record.pk).update(image_file="")
    kinds = {(p.kind, p.subject) for p in archive_check(quick=True)}
    assert (MISSING, str(media / "no-such-model")) in kinds
    assert (MISSING, f"generator_image {record.pk}") in kinds
    assert (STRAY, record.image_file.name) in kinds  # its file is now nobody's


def test_source_digests_are_checked_with_their_own_formula(archive_rows, media):
    source = archive_rows["source"]
    assert archive_check() == []
    with PILImage.open(media / source.file.name) as decoded:
        flipped = decoded.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT)
        flipped.save(media / source.file.name)
    (problem,) = archive_check()
    assert (problem.kind, problem.subject) == (CHANGED, source.file.name)


def test_a_backup_named_gz_is_gzipped(archive_rows, tmp_path):
    plain, zipped = tmp_path / "seedbank.tar", tmp_path / "seedbank.tar.gz"
    backup_create(out=plain)
    backup_create(out=zipped)
    assert zipped.read_bytes()[:2] == b"\x1f\x8b"
    with tarfile.open(zipped, "r:gz") as tar:
        manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
    assert {i["name"] for i in manifest["files"]} == {i["name"] for i in _manifest(plain)["files"]}
