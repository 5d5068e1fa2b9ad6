"""Uploaded import files a stopped run left behind are deleted after SEEDBANK_UPLOAD_STALE_HOURS
(archive.services.imports.import_uploads_sweep, beat: archive.tasks.sweep_stale_uploads)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from archive.models import ImportRun
from archive.services.imports import SWEEP_UPLOADS_TASK, import_uploads_sweep, upload_folder
from config.celery import app

pytestmark = pytest.mark.django_db
HOUR = 3600


def _folder(run_id: int, *, age_hours: float) -> Path:
    folder = upload_folder(run_id)
    (folder / "inner").mkdir(parents=True)
    for path in (folder / "0000-a.csv", folder / "inner" / "b.png"):
        path.write_bytes(b"x")
    when = time.time() - age_hours * HOUR
    for path in (folder / "0000-a.csv", folder / "inner" / "b.png", folder / "inner", folder):
        os.utime(path, (when, when))
    return folder


def test_only_old_folders_no_run_will_read_are_deleted(settings, tmp_path):
    settings.SEEDBANK_IMPORTS_DIR = tmp_path / "imports"
    settings.SEEDBANK_UPLOAD_STALE_HOURS = 48
    runs = {
        status: ImportRun.objects.create(status=status, sources=["a.csv"])
        for status in ("stopped", "done", "running")
    }
    stopped_old = _folder(runs["stopped"].pk, age_hours=49)
    done_old = _folder(runs["done"].pk, age_hours=49)
    running_old = _folder(runs["running"].pk, age_hours=500)  # a live run's, however old
    orphan_old = _folder(999_999, age_hours=49)  # the request that saved it failed
    fresh_stopped = _folder(ImportRun.objects.create(status="stopped").pk, age_hours=47)
    not_ours = tmp_path / "imports" / "notes"
    not_ours.mkdir()
    os.utime(not_ours, (0, 0))
    # A stale folder with one file touched lately is in use.
    touched = _folder(ImportRun.objects.create(status="stopped").pk, age_hours=49)
    (touched / "inner" / "b.png").touch()

    deleted = import_uploads_sweep()

    assert sorted(deleted) == sorted([stopped_old, done_old, orphan_old])
    for gone in (stopped_old, done_old, orphan_old):
        assert not gone.exists()
    for kept in (running_old, fresh_stopped, not_ours, touched):
        assert kept.exists()
    assert import_uploads_sweep() == []  # nothing more to do
    assert import_uploads_sweep(now=time.time() + 49 * HOUR) == [fresh_stopped, touched]
    assert running_old.exists()


def test_no_imports_folder_is_nothing_to_do(settings, tmp_path):
    settings.SEEDBANK_IMPORTS_DIR = tmp_path / "never-made"
    assert import_uploads_sweep() == []


def test_beat_runs_the_sweep_on_the_cpu_queue():
    (entry,) = [e for e in django_settings.CELERY_BEAT_SCHEDULE.values()
                if e["task"] == SWEEP_UPLOADS_TASK]  # fmt: skip
    assert entry["schedule"] <= 24 * HOUR
    app.loader.import_default_modules()
    assert SWEEP_UPLOADS_TASK in app.tasks
    assert app.amqp.router.route({}, SWEEP_UPLOADS_TASK)["queue"].name == "cpu"
