"""A backup carries the site's signing credentials, and a restore puts them back private: the
restored site signs with the same key, and recognizes the pictures it signed before."""

from __future__ import annotations

import stat

import pytest

from archive.services.backup import backup_create
from engine.provenance.credentials import Keyring
from generator.services.signing import site_credential
from tests.archive.test_backup import _manage, _manifest, empty_database, media  # noqa: F401
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db(transaction=True)  # pg_dump sees only committed rows


def test_the_signing_keys_survive_a_backup_and_restore(media, tmp_path, settings, empty_database):  # noqa: F811
    signing = tmp_path / "signing"
    settings.SEEDBANK_SIGNING_DIR = signing
    settings.SEEDBANK_SIGNING_CERT = settings.SEEDBANK_SIGNING_KEY = ""
    ImageFactory()
    retired = site_credential()
    current = Keyring(signing).rotate("Seedbank")
    (signing / "stray-note.txt").write_text("kept too")

    backup = tmp_path / "backup.tar"
    backup_create(out=backup)
    names = {item["name"] for item in _manifest(backup)["files"]}
    folders = sorted(f.name for f in signing.iterdir() if f.is_dir() and f.name[0] != ".")
    assert {f"signing/{folders[0]}/chain.pem", f"signing/{folders[1]}/key.pem"} <= names
    assert not any(name.startswith("signing/.") for name in names)  # not the lock file

    home = tmp_path / "restored"
    restored = _manage("restore", str(backup), target=empty_database, home=home)
    assert restored.returncode == 0, restored.stderr
    again = Keyring(home / "var" / "signing")
    assert again.current() == current
    assert again.chains() == [retired.chain_pem, current.chain_pem]
    assert stat.S_IMODE((home / "var" / "signing").stat().st_mode) == 0o700
    for folder in folders:
        assert stat.S_IMODE((home / "var" / "signing" / folder).stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "var" / "signing" / folders[1] / "key.pem").stat().st_mode) == 0o600
    shown = _manage("signing_key", "show", target=empty_database, home=home)
    assert current.fingerprint in shown.stdout and retired.fingerprint in shown.stdout
