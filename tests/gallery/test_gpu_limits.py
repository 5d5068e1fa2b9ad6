"""What the deployment allows one job (size, steps, batch, GPU work) and one user (the daily
budget, work waiting at once), refused on the form and the JSON API with the limit (issue 26)."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from generator.models import RenderJob

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def payload(model_version, **changes) -> dict:
    fields = {"model_version": model_version.pk, "prompt": "a lighthouse", "seed": 1,
              "width": 512, "height": 512, "steps": 30, "batch_size": 1}  # fmt: skip
    return fields | changes


def api(client, body: dict):
    return client.post("/api/v1/renders", json.dumps(body), content_type="application/json")


MEASURED = {"width": 1024, "height": 1024, "steps": 150, "batch_size": 8}
CAP = (
    "This job is too big: 1258.3 megapixel-steps (width × height in megapixels × steps × "
    "images, hires pass included), and one job may take at most 160. Lower the size, the "
    "steps or the batch size."
)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"width": 1032}, "width", "Width must be between 64 and 1024 pixels."),
        ({"height": 2048}, "height", "Height must be between 64 and 1024 pixels."),
        ({"steps": 151}, "steps", "Steps must be between 1 and 150."),
        ({"batch_size": 9}, "batch_size", "Batch size must be between 1 and 8."),
        (MEASURED, "__all__", CAP),
    ],
)
def test_limits_are_refused_with_the_limit_on_the_api_and_the_form(
    client, user, model_version, changes, field, message
) -> None:
    client.force_login(user)
    refused = api(client, payload(model_version, **changes))
    assert refused.status_code == 400
    assert refused.json()["errors"][field] == [message]
    form = client.post("/generate/", payload(model_version, **changes))
    assert form.status_code == 400
    assert message in form.content.decode()
    assert not RenderJob.objects.exists()


@override_settings(
    SEEDBANK_MAX_SIDE=512,
    SEEDBANK_MAX_STEPS=40,
    SEEDBANK_MAX_BATCH=2,
    SEEDBANK_MAX_JOB_MEGAPIXEL_STEPS=10,
)
def test_the_limits_come_from_the_deployments_settings(client, user, model_version) -> None:
    client.force_login(user)
    errors = api(client, payload(model_version, width=576, steps=41, batch_size=3)).json()
    assert errors["errors"] == {
        "width": ["Width must be between 64 and 512 pixels."],
        "steps": ["Steps must be between 1 and 40."],
        "batch_size": ["Batch size must be between 1 and 2."],
    }
    errors = api(client, payload(model_version, batch_size=2)).json()["errors"]
    assert "one job may take at most 10." in errors["__all__"][0]
    assert api(client, payload(model_version)).status_code == 202  # 7.9


def test_the_cap_is_said_in_the_readers_language(client, user, model_version) -> None:
    client.force_login(user)
    form = client.post(
        "/generate/", payload(model_version, **MEASURED), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    page = form.content.decode()
    assert form.status_code == 400 and "1258.3" in page and "160" in page
    assert "This job is too big" not in page


@override_settings(SEEDBANK_QUOTA_INFLIGHT_MEGAPIXEL_STEPS=10, SEEDBANK_MAX_JOB_MEGAPIXEL_STEPS=10)
def test_work_waiting_answers_429_on_the_api_and_the_form(client, user, model_version) -> None:
    client.force_login(user)
    assert api(client, payload(model_version)).status_code == 202  # 7.9 waiting
    refused = api(client, payload(model_version, seed=2))
    assert refused.status_code == 429
    assert refused.json()["error"].startswith("Too much work waiting: your queued and rendering")
    form = client.post("/generate/", payload(model_version, seed=2), HTTP_ACCEPT_LANGUAGE="en")
    assert form.status_code == 429 and "Too much work waiting" in form.content.decode()
    assert RenderJob.objects.count() == 1


@override_settings(SEEDBANK_QUOTA_MEGAPIXEL_STEPS_PER_DAY=10)
def test_the_daily_budget_answers_429_in_the_readers_language(client, user, model_version):
    client.force_login(user)
    assert api(client, payload(model_version)).status_code == 202
    RenderJob.objects.update(status=RenderJob.Status.DONE, attempts=1)
    refused = api(client, payload(model_version, seed=2))
    assert (
        refused.status_code == 429
        and "Daily GPU budget reached: 8 of 10" in refused.json()["error"]
    )
    form = client.post("/generate/", payload(model_version, seed=2), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert form.status_code == 429 and "Daily GPU budget" not in form.content.decode()
