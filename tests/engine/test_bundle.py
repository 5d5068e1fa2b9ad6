"""Backup bundles (engine.bundle): files hashed on the way in and out, names kept inside."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from engine.bundle import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    BundleError,
    Entry,
    bundle_add_file,
    bundle_add_json,
    bundle_extract,
    bundle_open,
    entry_dict,
    manifest_mismatches,
    manifest_read,
)


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
def test_files_come_back_with_the_digests_they_went_in_with(tmp_path, suffix):
    source = tmp_path / "source"
    source.mkdir()
    big = source / "weights.safetensors"
    big.write_bytes(bytes(range(256)) * 20_000)  # several chunks
    small = source / "a.png"
    small.write_bytes(b"\x89PNG tiny")
    path = tmp_path / f"backup{suffix}"
    copied: list[int] = []
    with bundle_open(path, gzip=suffix == ".tar.gz") as tar:
        entries = [
            bundle_add_file(tar, big, "models/1/unet/weights.safetensors", advance=copied.append),
            bundle_add_file(tar, small, "media/images/a.png", advance=copied.append),
        ]
        manifest = {"format": FORMAT, "version": FORMAT_VERSION}
        manifest["files"] = [entry_dict(entry) for entry in entries]
        bundle_add_json(tar, MANIFEST, manifest)
    assert sum(copied) == big.stat().st_size + small.stat().st_size
    assert entries[0].sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    if suffix == ".tar.gz":
        with path.open("rb") as handle:
            assert handle.read(2) == b"\x1f\x8b"

    out = tmp_path / "out"
    found = list(bundle_extract(path, out))
    assert manifest_read(out)["files"] == manifest["files"]
    assert manifest_mismatches(manifest["files"], found) == []
    assert (out / "models/1/unet/weights.safetensors").read_bytes() == big.read_bytes()


def test_mismatches_name_each_file():
    expected = [
        {"name": "media/a.png", "size": 3, "sha256": "aa"},
        {"name": "media/b.png", "size": 3, "sha256": "bb"},
    ]
    found = [
        Entry("media/a.png", 3, "ff"),
        Entry("media/c.png", 1, "cc"),
        Entry(MANIFEST, 10, "00"),
    ]
    problems = manifest_mismatches(expected, found)
    assert len(problems) == 3
    assert problems[0].startswith("media/a.png: sha256 ff")
    assert problems[1] == "media/b.png: missing from the bundle"
    assert problems[2] == "media/c.png: in the bundle but not in its manifest"


def _crafted(path, name, *, kind=tarfile.REGTYPE):
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))


@pytest.mark.parametrize("name", ["../escape.png", "/etc/cron.d/evil", "media/../../x"])
def test_names_that_leave_the_folder_are_refused(tmp_path, name):
    path = tmp_path / "evil.tar"
    _crafted(path, name)
    with pytest.raises(BundleError, match="relative path inside"):
        list(bundle_extract(path, tmp_path / "out"))
    assert not (tmp_path / "escape.png").exists()


def test_links_are_refused(tmp_path):
    path = tmp_path / "evil.tar"
    _crafted(path, "media/images/link.png", kind=tarfile.SYMTYPE)
    with pytest.raises(BundleError, match="not a regular file"):
        list(bundle_extract(path, tmp_path / "out"))


def test_a_manifest_from_a_newer_release_is_refused(tmp_path):
    (tmp_path / MANIFEST).write_text(json.dumps({"format": FORMAT, "version": FORMAT_VERSION + 1}))
    with pytest.raises(BundleError, match="Restore it with the release that made it"):
        manifest_read(tmp_path)
    (tmp_path / MANIFEST).unlink()
    with pytest.raises(BundleError, match="not a Seedbank backup"):
        manifest_read(tmp_path)
