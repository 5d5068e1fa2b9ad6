"""The whole loop over real HTTP: sign in, submit a recipe, the worker renders, the image is
stored, hashed and embedded; a Remix without edits reproduces the same sha256; search finds it."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image as PILImage

from generator.models import Image, Reproduction
from search.models import ImageEmbedding
from tests.e2e.conftest import signed_in_session, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def finished_job(session: requests.Session, base_url: str, job_id: int) -> dict:
    def poll() -> dict | None:
        payload = session.get(f"{base_url}/api/v1/jobs/{job_id}").json()
        return payload if payload["status"] in {"done", "failed"} else None

    payload = wait_for(poll)
    assert payload["status"] == "done", payload
    return payload


def test_submit_render_embed_remix_search(
    live_server, worker_process, model_version, user, media_root: Path
):
    base = live_server.url
    session = signed_in_session(base, "ada", "pw-for-tests-1")
    csrf = {"X-CSRFToken": session.cookies["csrftoken"]}

    recipe = {
        "model_version": model_version.pk,
        "prompt": "a lighthouse on a cliff at sunset, oil painting",
        "negative_prompt": "blurry",
        "seed": 424242,
        "scheduler": "PNDM",
        "steps": 12,
        "guidance": 7.5,
        "width": 64,
        "height": 64,
        "precision": "fp32",
        "batch_size": 1,
    }
    response = session.post(f"{base}/api/v1/renders", json=recipe, headers=csrf)
    assert response.status_code == 202, response.text
    job = finished_job(session, base, response.json()["id"])

    # The record, its PNG on disk, and a sha256 of the decoded pixels that matches the file.
    (entry,) = job["images"]
    image = Image.objects.get(pk=entry["id"])
    assert image.status == Image.Status.READY
    assert (image.prompt, image.seed, image.steps) == (recipe["prompt"], 424242, 12)
    png_path = media_root / image.image_file.name
    assert png_path.is_file()
    with PILImage.open(png_path) as decoded:
        pixels = np.asarray(decoded.convert("RGB"))
    assert pixels.shape == (64, 64, 3)
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == image.pixel_sha256
    assert image.environment["seed"] == 424242
    assert image.environment["scheduler"] == "PNDM"

    # The cpu-queue task embedded it into pgvector.
    embedding = wait_for(lambda: ImageEmbedding.objects.filter(image=image).first())
    assert embedding.dim == 512
    assert abs(float(np.linalg.norm(np.asarray(embedding.embedding))) - 1.0) < 1e-3

    # The detail page serves the PNG bytes that are on disk.
    served = session.get(base + entry["src"])
    assert served.status_code == 200
    assert served.content == png_path.read_bytes()

    # Remix without edits: a reproduction whose pixels hash the same.
    page = session.get(f"{base}/images/{image.pk}/remix/")
    assert page.status_code == 200
    form = {key: value for key, value in recipe.items()}
    form["csrfmiddlewaretoken"] = session.cookies["csrftoken"]
    response = session.post(f"{base}/images/{image.pk}/remix/", data=form, allow_redirects=False)
    assert response.status_code == 302, response.text[:1000]
    job_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    payload = finished_job(session, base, job_id)
    assert payload["reproduction"]["verdict"] == Reproduction.Verdict.BIT_IDENTICAL
    assert payload["reproduction"]["pixel_sha256"] == image.pixel_sha256
    rerun = session.get(base + payload["reproduction"]["src"]).content
    with PILImage.open(io.BytesIO(rerun)) as decoded:
        assert hashlib.sha256(np.asarray(decoded.convert("RGB")).tobytes()).hexdigest() == (
            image.pixel_sha256
        )
    assert Image.objects.count() == 1  # a rerun is a check, not a new record

    # Text search returns the record, with a score.
    results = session.get(f"{base}/", params={"q": "lighthouse at sunset"})
    assert results.status_code == 200
    assert f'href="/images/{image.pk}/"' in results.text
    assert "score" in results.text
