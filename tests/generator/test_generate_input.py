"""Bad recipe input gets a clear form error or HTTP 400 — never a 500, never a queued job."""

from __future__ import annotations

import json

import pytest
from celery import current_app

from engine.recipe import SEED_MAX
from generator.models import RenderJob

pytestmark = pytest.mark.django_db


def good_recipe(model_version) -> dict:
    return {
        "model_version": model_version.pk,
        "prompt": "a red fox in snow",
        "negative_prompt": "",
        "seed": 5,
        "scheduler": "PNDM",
        "steps": 10,
        "guidance": 7.5,
        "width": 64,
        "height": 64,
        "precision": "fp32",
        "batch_size": 1,
    }


BAD_INPUTS = [
    ("width", 100, "multiple of 8"),
    ("height", 4096, "between 64 and 1024"),
    ("steps", 0, "between 1 and 150"),
    ("steps", 999, "between 1 and 150"),
    ("seed", -1, "between 0 and"),
    ("seed", SEED_MAX + 1, "between 0 and"),
    ("scheduler", "Warp drive", "Unknown scheduler"),
    ("model_version", 999999, "Unknown model version"),
    ("prompt", "", "Write a prompt"),
    ("steps", "many", "whole number"),
    ("precision", "fp16", "fp16 needs CUDA GPUs"),
    ("mode", "txt2vid", "Unknown mode"),
]


@pytest.mark.parametrize(("field", "value", "fragment"), BAD_INPUTS)
def test_api_answers_400_with_the_field(client, user, model_version, field, value, fragment):
    client.force_login(user)
    payload = good_recipe(model_version) | {field: value}
    response = client.post("/api/v1/renders", json.dumps(payload), content_type="application/json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(fragment in message for message in errors[field]), errors
    assert RenderJob.objects.count() == 0


@pytest.mark.parametrize(("field", "value", "fragment"), BAD_INPUTS)
def test_form_shows_the_error_and_queues_nothing(
    client, user, model_version, field, value, fragment
):
    client.force_login(user)
    response = client.post("/generate/", good_recipe(model_version) | {field: value})
    assert response.status_code == 400
    assert fragment in response.content.decode()
    assert RenderJob.objects.count() == 0


def test_api_rejects_malformed_json_and_non_objects(client, user, model_version):
    client.force_login(user)
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        response = client.post("/api/v1/renders", body, content_type="application/json")
        assert response.status_code == 400
    assert RenderJob.objects.count() == 0


def test_anonymous_cannot_generate(client, model_version):
    response = client.post(
        "/api/v1/renders", json.dumps(good_recipe(model_version)), content_type="application/json"
    )
    assert response.status_code == 401
    response = client.get("/generate/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert RenderJob.objects.count() == 0


def test_good_recipe_queues_one_job_after_commit(
    client, user, model_version, django_capture_on_commit_callbacks, monkeypatch
):
    sent: list[tuple[str, list[int], str]] = []
    limits: list[tuple[int, int]] = []

    def send_task(name, args, task_id, soft_time_limit, time_limit):
        sent.append((name, args, task_id))
        limits.append((soft_time_limit, time_limit))

    monkeypatch.setattr(current_app, "send_task", send_task)
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            "/api/v1/renders",
            json.dumps(good_recipe(model_version) | {"seed": None, "batch_size": 3}),
            content_type="application/json",
        )
    assert response.status_code == 202
    job = RenderJob.objects.get()
    assert len(callbacks) == 1
    assert sent == [("generator.tasks.run_render_job", [job.pk], job.celery_task_id)]
    # Time limits grow with the recipe's size; the hard one leaves the soft one time to report.
    ((soft, hard),) = limits
    assert soft == job.time_limit_seconds and soft < hard
    assert job.sent_at is not None
    seeds = sorted(job.images.values_list("seed", flat=True))
    assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]  # a random seed, stored, then +1, +2
