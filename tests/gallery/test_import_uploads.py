"""Hostile staff import uploads (#26): long names, oversized members and cells, bad rows."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from archive.models import ImportProblem, ImportRun
from archive.services.imports import import_run_execute, stored_upload_name, upload_folder
from tests.engine.imports.test_image_files import A1111_TEXT, png

pytestmark = pytest.mark.django_db


@pytest.fixture
def imports_dir(settings, tmp_path):
    settings.SEEDBANK_IMPORTS_DIR = tmp_path / "imports"
    return settings.SEEDBANK_IMPORTS_DIR


@pytest.mark.parametrize("name", ["x" * 300 + ".csv", "猫" * 120 + ".csv"])
def test_a_very_long_file_name_is_kept_shortened_with_its_suffix(
    staff_user, sent, imports_dir, name, django_capture_on_commit_callbacks
):
    client = Client(raise_request_exception=False)
    client.force_login(staff_user)
    upload = SimpleUploadedFile(name, b"prompt,seed\nan owl,3\n", "text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/staff/import/", {"uploads": [upload], "render_missing": ""})
    assert response.status_code == 302, response.content[:300]
    run = ImportRun.objects.get()
    (saved,) = upload_folder(run.pk).iterdir()
    assert saved.name.startswith("0000-") and saved.suffix == ".csv"
    assert len(saved.name.encode()) <= 200
    assert run.sources[0].startswith(name[:50])  # the name as sent, for people
    import_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.read, run.incomplete, run.rejected) == ("done", 1, 1, 0)


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("a.png", "0007-a.png"),
        ("../../etc/rows.csv", "0007-rows.csv"),
        ("..", "0007-upload"),
        ("C:\\Users\\me\\rows.csv", "0007-rows.csv"),
        ("", "0007-upload"),
    ],
)
def test_stored_upload_names(name, stored):
    assert stored_upload_name(7, name) == stored


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, text in members.items():
            archive.writestr(member, text)
    return buffer.getvalue()


def _upload_and_run(client, name: str, data: bytes, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile(name, data)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/staff/import/", {"uploads": [upload], "render_missing": ""})
    assert response.status_code == 302, response.content[:300]
    run = ImportRun.objects.latest("pk")
    import_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def test_an_oversized_zip_member_is_a_bad_row_and_the_rest_go_in(
    client, staff_user, sent, imports_dir, settings, django_capture_on_commit_callbacks
):
    settings.SEEDBANK_IMPORT_MAX_MEMBER_BYTES = 5_000
    client.force_login(staff_user)
    data = _zip({
        "big.csv": "prompt,seed\n" + "a lamp,5\n" * 1_000,  # 9 kB inflated
        "small.csv": "prompt,seed\nan owl,1\na fox,2\n",
    })  # fmt: skip
    run = _upload_and_run(client, "export.zip", data, django_capture_on_commit_callbacks)
    assert (run.status, run.read, run.incomplete, run.rejected) == ("done", 3, 2, 1)
    (problem,) = ImportProblem.objects.filter(run=run)
    assert problem.location.endswith("export.zip/big.csv")
    assert problem.reason == "inflates to more than 5,000 bytes (the limit for one zip member)"
    page = client.get(f"/staff/import/{run.pk}/").content.decode()
    assert "the limit for one zip member" in page


def test_one_oversized_cell_rejects_its_row_and_the_rest_go_in(
    client, staff_user, sent, imports_dir, django_capture_on_commit_callbacks
):
    client.force_login(staff_user)
    table = "prompt,seed\nan owl,1\n" + "x" * 200_000 + ",2\na fox,3\n"
    run = _upload_and_run(client, "rows.csv", table.encode(), django_capture_on_commit_callbacks)
    assert (run.status, run.read, run.incomplete, run.rejected) == ("done", 3, 2, 1)
    (problem,) = ImportProblem.objects.filter(run=run)
    assert problem.location == "0000-rows.csv line 3"
    assert "column 'prompt' holds 200,000 characters" in problem.reason


def test_rows_the_database_cannot_hold_are_rejected_alone(
    client, staff_user, sent, imports_dir, django_capture_on_commit_callbacks
):
    """Values past a column (an id longer than a source key holds, NUL or NaN in what is kept
    verbatim) were sent with their batch and the database refused the batch: the import stopped
    with every later row unread."""
    client.force_login(staff_user)
    lines = [
        {"prompt": "an owl", "seed": 1},
        {"id": "k" * 600, "prompt": "a long id", "seed": 2},
        {"prompt": "a NUL", "seed": 3, "file": "a\u0000b"},
        '{"prompt": "NaN", "seed": 4, "file": NaN}',
        {"prompt": "a fox", "seed": 5},
    ]
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    run = _upload_and_run(client, "rows.jsonl", text.encode(), django_capture_on_commit_callbacks)
    assert (run.status, run.read, run.incomplete, run.rejected) == ("done", 5, 2, 3), run.error
    reasons = dict(ImportProblem.objects.filter(run=run).values_list("location", "reason"))
    assert reasons == {
        "0000-rows.jsonl line 2": "source_key: Ensure this value has at most 500 characters "
        "(it has 625).",
        "0000-rows.jsonl line 3": "raw holds a NUL character",
        "0000-rows.jsonl line 4": "raw holds NaN or Infinity, which JSON cannot",
    }


def test_a_picture_whose_recipe_a_record_cannot_hold_is_rejected_alone(
    client, staff_user, sent, imports_dir, django_capture_on_commit_callbacks
):
    client.force_login(staff_user)
    steps = A1111_TEXT.replace("Steps: 20", "Steps: 40000")  # past the smallint column
    surrogate = json.dumps({"prompt": "a kite", "seed": 1, "file": "\ud800"})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.png", png({"parameters": steps}))
        archive.writestr("b.png", png({"parameters": A1111_TEXT}, colour="blue"))
        archive.writestr("c.jsonl", surrogate + "\n")
    run = _upload_and_run(client, "pictures.zip", buffer.getvalue(),
                          django_capture_on_commit_callbacks)  # fmt: skip
    assert (run.status, run.read, run.imported, run.rejected) == ("done", 3, 1, 2), run.error
    reasons = dict(ImportProblem.objects.filter(run=run).values_list("location", "reason"))
    assert reasons == {
        "0000-pictures.zip/a.png": "steps: Ensure this value is less than or equal to 32767.",
        "0000-pictures.zip/c.jsonl line 1": "raw is not valid Unicode (a lone surrogate)",
    }
