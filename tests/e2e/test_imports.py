"""An uploaded import through the real processes: the cpu worker imports it, pictures are
embedded, a picture-less recipe renders on the gpu worker, and verify re-renders on it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from archive.models import ImportRun, SourceRecord
from archive.services.imports import import_upload_start
from archive.services.verify import imports_verify
from generator.models import Image, Reproduction
from search.models import ImageEmbedding
from tests.e2e.conftest import wait_for
from tests.engine.imports.test_image_files import A1111_TEXT, png

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_uploaded_import_runs_on_the_workers(worker_process, model_version, staff_user):
    ours = A1111_TEXT.replace("6ce0161689", model_version.weights_digest[:10])
    files = [
        SimpleUploadedFile("ours.png", png({"parameters": ours})),
        SimpleUploadedFile(
            "rows.csv",
            b"prompt,seed,steps,cfg,width,height,sampler,model\n"
            b"a koi pond,3,4,7,64,64,DDIM,tiny-sd\n"
            b",4,4,7,64,64,DDIM,tiny-sd\n",
        ),
    ]
    run = import_upload_start(files=files, mapping={}, render_missing=True, user=staff_user)
    done = ImportRun.objects.filter(pk=run.pk, status=ImportRun.Status.DONE)
    wait_for(done.exists, timeout=120)
    run.refresh_from_db()
    assert (run.read, run.imported, run.queued, run.rejected) == (3, 1, 1, 1)

    picture = SourceRecord.objects.get(tool="a1111").image
    wait_for(ImageEmbedding.objects.filter(image=picture).exists, timeout=120)
    queued = SourceRecord.objects.get(state=SourceRecord.State.QUEUED).image
    rendered = Image.objects.filter(pk=queued.pk, status=Image.Status.READY)
    wait_for(rendered.exists, timeout=120)

    (check,) = imports_verify()
    finished = Reproduction.objects.filter(pk=check.pk).exclude(
        verdict=Reproduction.Verdict.PENDING
    )
    wait_for(finished.exists, timeout=120)
    # A flat red square is not what the recipe draws: the verdict says so, it never lies.
    assert finished.get().verdict == Reproduction.Verdict.DIFFERS
