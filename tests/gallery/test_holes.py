"""Regression tests for the holes a first-day service must not have (each failed before its fix)."""

from __future__ import annotations

import io
import json

import pytest
from django.test import override_settings
from django.utils import timezone
from PIL import Image as PILImage

from gallery.forms.recipe import RecipeForm
from generator.models import Image, RenderJob, Reproduction, SourceImage
from generator.services.records import source_image_store
from tests.factories import ImageFactory, UserFactory

pytestmark = pytest.mark.django_db


def _png(colour: str = "red") -> io.BytesIO:
    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "upload.png"
    return buffer


@override_settings(SEEDBANK_QUOTA_RENDERS_PER_DAY=3)
def test_an_unchanged_remix_costs_the_quota_of_its_whole_batch(client, user, model_version):
    parent = ImageFactory(model_version=model_version, batch_size=4, batch_index=0)
    client.force_login(user)

    recipe = RecipeForm.initial_from_image(parent)
    response = client.post(
        f"/images/{parent.pk}/remix/", {k: v for k, v in recipe.items() if v is not None}
    )
    assert response.status_code == 429 and "quota" in response.content.decode()
    assert not Reproduction.objects.exists() and not RenderJob.objects.exists()


@override_settings(SEEDBANK_QUOTA_RENDERS_PER_DAY=2)
def test_reruns_count_against_later_renders(client, user, model_version):
    parent = ImageFactory(model_version=model_version, batch_size=2)
    Reproduction.objects.create(
        image=parent,
        job=RenderJob.objects.create(kind="reproduce", owner=user, sent_at=timezone.now()),
        requested_by=user, whole_batch=True,
    )  # fmt: skip
    client.force_login(user)
    payload = {"prompt": "a cat", "model_version": model_version.pk}
    response = client.post("/api/v1/renders", json.dumps(payload), content_type="application/json")
    assert response.status_code == 429


@override_settings(SEEDBANK_RATE_SIGNUP_PER_HOUR=2)
def test_sign_up_is_rate_limited_per_address(client):
    for n in range(3):
        response = client.post(
            "/accounts/signup/",
            {"username": f"new{n}", "password1": "a-Long-pass-123", "password2": "a-Long-pass-123"},
        )
    assert response.status_code == 429


def test_someone_elses_upload_cannot_be_used_by_its_id(client, user, model_version):
    stranger = UserFactory()
    source = source_image_store(picture=PILImage.new("RGB", (64, 64), "blue"), kind="init",
                                owner=stranger)  # fmt: skip
    client.force_login(user)
    payload = {"prompt": "a cat", "mode": "img2img", "strength": 0.5, "init_image_id": source.pk}
    response = client.post("/api/v1/renders", json.dumps(payload), content_type="application/json")
    assert response.status_code == 400 and "init_image" in response.json()["errors"]
    # ...but a record made with it, visible to the user, lets a remix keep its init image.
    ImageFactory(model_version=model_version, mode="img2img", init_image=source, strength=0.5)
    response = client.post("/api/v1/renders", json.dumps(payload), content_type="application/json")
    assert response.status_code == 202, response.content


@override_settings(SEEDBANK_QUOTA_RENDERS_PER_DAY=1)
def test_uploads_are_not_stored_when_the_quota_refuses(client, user, model_version):
    ImageFactory(owner=user, model_version=model_version)  # the day's one render, spent
    client.force_login(user)
    data = {"model_version": model_version.pk, "prompt": "a cat", "mode": "img2img",
            "strength": 0.5, "init_upload": _png()}  # fmt: skip
    response = client.post("/generate/", data)
    assert response.status_code == 429
    assert not SourceImage.objects.exists()


def test_a_page_view_of_an_evicted_record_queues_nothing(client, model_version, user):
    image = ImageFactory(model_version=model_version, evicted_at=timezone.now(), image_file="")
    Reproduction.objects.create(image=image, job=RenderJob.objects.create(kind="reproduce"),
                                verdict="bit-identical", finished_at=timezone.now())  # fmt: skip
    jobs = RenderJob.objects.count()
    assert client.get(f"/images/{image.pk}/").status_code == 200
    client.force_login(user)
    assert client.get(f"/images/{image.pk}/").status_code == 200
    assert RenderJob.objects.count() == jobs  # GET wrote nothing
    response = client.post(f"/images/{image.pk}/restore/")
    assert response.status_code == 302
    restore = Reproduction.objects.get(purpose="restore")
    assert restore.requested_by == user and RenderJob.objects.count() == jobs + 1


def test_use_as_init_image_writes_nothing_on_get(client, user, model_version):
    record = ImageFactory(model_version=model_version)
    client.force_login(user)
    assert client.get("/generate/", {"init": record.pk}).status_code == 200
    assert not SourceImage.objects.exists()


@override_settings(SEEDBANK_RATE_SEARCH_PER_MINUTE=1)
def test_image_search_is_rate_limited_before_the_upload_is_decoded(client, monkeypatch):
    client.post("/search/", {"image": _png()})
    decoded: list[object] = []
    monkeypatch.setattr("gallery.forms.search.picture_from_upload", decoded.append)
    response = client.post("/search/", {"image": _png("green")})
    assert response.status_code == 429 and decoded == []


def test_pages_and_exports_show_no_server_paths(client, model_version):
    image = ImageFactory(model_version=model_version, environment={
        "model_path": "/srv/secret/models/tiny", "platform": "Linux-6.1-secret", "torch": "2.13.0",
        "scheduler_config": {"_class_name": "PNDMScheduler"}, "torch_threads": 1,
    })  # fmt: skip
    page = client.get(f"/images/{image.pk}/").content.decode()
    export = client.get(f"/images/{image.pk}/export.json").content.decode()
    for text in (page, export):
        assert "/srv/secret" not in text and "Linux-6.1-secret" not in text
        assert "2.13.0" in text
    assert Image.objects.get(pk=image.pk).environment["model_path"] == "/srv/secret/models/tiny"


def test_hidden_records_media_is_not_served_to_visitors(
    client, staff_user, media_root, model_version
):
    image = ImageFactory(model_version=model_version)
    url = image.image_file.url
    assert client.get(url).status_code == 200
    image.hidden = True
    image.save(update_fields=["hidden"])
    assert client.get(url).status_code == 404
    client.force_login(image.owner or staff_user)
    assert client.get(url).status_code == 200  # staff (or the owner) still see it


def test_uploads_are_served_to_their_owner_only(client, user, media_root):
    source = source_image_store(picture=PILImage.new("RGB", (64, 64), "blue"), kind="init",
                                owner=user)  # fmt: skip
    assert client.get(source.file.url).status_code == 404
    client.force_login(user)
    assert client.get(source.file.url).status_code == 200


def test_media_paths_cannot_escape_media_root(client, media_root):
    assert client.get("/media/../config/settings.py").status_code == 404
    assert client.get("/media/images/../../etc/passwd").status_code == 404


def test_hidden_collection_covers_are_not_shown(client, model_version, media_root):
    from gallery.models import Collection

    cover = ImageFactory(model_version=model_version, hidden=True)
    Collection.objects.create(title="C", slug="c", is_public=True, cover=cover)
    assert cover.image_file.url not in client.get("/").content.decode()
