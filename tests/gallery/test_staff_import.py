"""The staff import upload and run pages (gallery.views.imports) with the real database."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from archive.models import ImportRun, SourceRecord
from archive.services.imports import IMPORT_TASK, import_run_execute, upload_folder
from tests.engine.imports.test_image_files import A1111_TEXT, png

pytestmark = pytest.mark.django_db


def uploads():
    return [
        SimpleUploadedFile("a.png", png({"parameters": A1111_TEXT}), "image/png"),
        SimpleUploadedFile("../../etc/rows.csv", b"prompt,seed\nan owl,3\n,4\n", "text/csv"),
    ]


def test_staff_upload_queues_a_run_the_worker_imports(
    client, staff_user, sent, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.SEEDBANK_IMPORTS_DIR = tmp_path / "imports"
    client.force_login(staff_user)
    assert client.get("/staff/import/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/staff/import/", {"uploads": uploads(), "mapping": "seed=seed", "render_missing": "on"}
        )
    run = ImportRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/staff/import/{run.pk}/"
    assert sent == [(IMPORT_TASK, [run.pk])]
    saved = sorted(p.name for p in upload_folder(run.pk).iterdir())
    assert saved == ["0000-a.png", "0001-rows.csv"]  # no path from the client's name
    page = client.get(f"/staff/import/{run.pk}/")
    assert b'http-equiv="refresh"' in page.content  # running: the page follows it

    import_run_execute(run_id=run.pk)  # what the cpu worker does with the task
    run.refresh_from_db()
    assert (run.status, run.read, run.imported, run.rejected) == ("done", 3, 1, 1)
    assert SourceRecord.objects.filter(state="incomplete").count() == 1  # an owl, no steps
    assert not upload_folder(run.pk).exists()
    page = client.get(f"/staff/import/{run.pk}/").content.decode()
    assert "http-equiv" not in page and "no prompt" in page and "rows.csv line 3" in page
    assert "<td>rejected</td><td>no prompt</td><td>1</td><td>0001-rows.csv line 3</td>" in page
    import_run_execute(run_id=run.pk)  # a redelivered task: nothing more
    assert ImportRun.objects.get().read == 3


def test_bad_uploads_say_why_and_keep_nothing(client, staff_user, sent):
    client.force_login(staff_user)
    response = client.post("/staff/import/", {"uploads": uploads(), "mapping": "colour=c"})
    assert response.status_code == 400 and b"Unknown field" in response.content
    exe = SimpleUploadedFile("tool.exe", b"MZ", "application/octet-stream")
    response = client.post("/staff/import/", {"uploads": [exe]})
    assert (
        response.status_code == 400 and b"Not a file Seedbank imports: tool.exe" in response.content
    )
    with override_settings(SEEDBANK_IMPORT_MAX_UPLOAD_BYTES=10):
        response = client.post("/staff/import/", {"uploads": uploads()})
    assert response.status_code == 400 and b"the limit is" in response.content
    assert not ImportRun.objects.exists() and sent == []


def test_imports_are_for_staff(client, user):
    assert client.get("/staff/import/").status_code == 302  # to the login page
    client.force_login(user)
    assert client.get("/staff/import/").status_code == 403
    assert client.post("/staff/import/", {"uploads": uploads()}).status_code == 403
    assert client.get("/staff/import/1/").status_code == 403


def test_hostile_run_ids_and_collection_slugs(client, staff_user):
    client.force_login(staff_user)
    assert client.get("/staff/import/99999999999999999999999/").status_code == 404
    assert client.get("/staff/import/0/").status_code == 404
    assert client.get("/collections/%00/export.zip").status_code == 400  # NUL: refused early
    for slug in ("..%2F..", "x" * 3000, "<script>", "%E9%95%BF%E5%9F%8E"):
        assert client.get(f"/collections/{slug}/export.zip").status_code == 404
