"""Curation, accounts, permissions, quotas, rate limits and the cost dashboard (issue 7)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied
from django.test import override_settings
from django.utils import timezone
from django.utils.formats import date_format

from gallery.models import Collection, CollectionItem
from gallery.services import collection_add_images, images_moderate
from generator.models import DevicePrice, Image, RenderJob
from generator.selectors.stats import render_stats
from search.models import EMBEDDING_DIM, ImageEmbedding
from search.selectors import active_model_name
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(media_root, tiny_sd_path):
    return media_root


def recipe_payload(model_version, **changes) -> dict:
    payload = {
        "model_version": model_version.pk,
        "prompt": "a fox",
        "seed": 1,
        "scheduler": "PNDM",
        "steps": 5,
        "guidance": 7.5,
        "width": 64,
        "height": 64,
        "precision": "fp32",
        "batch_size": 1,
    }
    return payload | changes


def post_json(client, url: str, payload: dict):
    return client.post(url, json.dumps(payload), content_type="application/json")


# --- permissions -------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in_for_generate_and_remix(client, media) -> None:
    image = ImageFactory()
    for url in ("/generate/", f"/images/{image.pk}/remix/"):
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302
            assert response["Location"].startswith("/accounts/login/")
    assert RenderJob.objects.count() == 0


def test_curation_services_refuse_non_staff(user, staff_user, media) -> None:
    image = ImageFactory()
    collection = Collection.objects.create(title="Picks", slug="picks")
    with pytest.raises(PermissionDenied):
        collection_add_images(actor=user, collection=collection, images=[image])
    with pytest.raises(PermissionDenied):
        images_moderate(actor=user, images=Image.objects.all(), hidden=True)
    assert not CollectionItem.objects.exists() and not Image.objects.filter(hidden=True).exists()

    assert collection_add_images(actor=staff_user, collection=collection, images=[image]) == 1
    assert collection_add_images(actor=staff_user, collection=collection, images=[image]) == 0
    collection.refresh_from_db()
    assert collection.cover == image


def test_non_staff_cannot_reach_dashboard_or_admin_actions(client, user, staff_user, media) -> None:
    image = ImageFactory()
    client.force_login(user)
    assert client.get("/staff/").status_code == 403
    response = client.post(
        "/admin/generator/image/", {"action": "hide", "_selected_action": [image.pk]}
    )
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    image.refresh_from_db()
    assert not image.hidden

    client.force_login(staff_user)
    assert client.get("/staff/").status_code == 200


def test_staff_admin_actions_moderate_and_collect(client, django_user_model, media) -> None:
    admin = django_user_model.objects.create_superuser("root", password="x")
    images = ImageFactory.create_batch(3)
    collection = Collection.objects.create(title="Foxes", slug="foxes", is_public=True)
    client.force_login(admin)
    selected = [image.pk for image in images[:2]]
    client.post("/admin/generator/image/", {"action": "flag_nsfw", "_selected_action": selected})
    client.post(
        "/admin/generator/image/",
        {"action": "add_to_collection", "_selected_action": selected, "collection": collection.pk},
    )
    assert set(Image.objects.filter(nsfw=True).values_list("pk", flat=True)) == set(selected)
    assert list(collection.items.values_list("image_id", "position")) == [
        (selected[0], 0),
        (selected[1], 1),
    ]


def test_private_collections_are_404_except_for_staff(client, user, staff_user, media) -> None:
    hidden_one = Collection.objects.create(title="Drafts", slug="drafts", is_public=False)
    public_one = Collection.objects.create(title="Best of", slug="best-of", is_public=True)
    CollectionItem.objects.create(collection=public_one, image=ImageFactory(), position=0)
    for viewer in (None, user):
        if viewer:
            client.force_login(viewer)
        assert client.get(f"/collections/{hidden_one.slug}/").status_code == 404
        assert client.get(f"/collections/{public_one.slug}/").status_code == 200
    home = client.get("/").content.decode()
    assert "Best of" in home and "Drafts" not in home
    client.force_login(staff_user)
    assert client.get(f"/collections/{hidden_one.slug}/").status_code == 200


def test_featured_collections_come_first(client, media) -> None:
    Collection.objects.create(title="Aardvarks", slug="a", is_public=True, position=0)
    Collection.objects.create(title="Zebras", slug="z", is_public=True, is_featured=True)
    home = client.get("/").content.decode()
    assert home.index("Zebras") < home.index("Aardvarks")


def test_hidden_images_vanish_for_non_staff_but_stay_in_lineage_for_staff(
    client, user, staff_user, media
) -> None:
    parent = ImageFactory(prompt="visible parent")
    child = ImageFactory(prompt="hidden child", parent=parent, hidden=True)
    for image in (parent, child):
        ImageEmbedding.objects.create(
            image=image,
            model_name=active_model_name(),
            dim=EMBEDDING_DIM,
            embedding=np.ones(EMBEDDING_DIM, np.float32) / np.sqrt(EMBEDDING_DIM),
        )
    client.force_login(user)
    assert "hidden child" not in client.get("/").content.decode()
    assert "hidden child" not in client.get("/", {"q": "child"}).content.decode()
    assert client.get(f"/images/{child.pk}/").status_code == 404
    assert f"/images/{child.pk}/" not in client.get(f"/images/{parent.pk}/").content.decode()

    client.force_login(staff_user)
    assert client.get(f"/images/{child.pk}/").status_code == 200
    assert f"/images/{child.pk}/" in client.get(f"/images/{parent.pk}/").content.decode()


# --- accounts ----------------------------------------------------------------------------


def test_sign_up_then_generate_and_see_own_page(
    client, django_user_model, model_version, media
) -> None:
    response = client.post(
        "/accounts/signup/",
        {"username": "newbie", "password1": "a-long-pass-7", "password2": "a-long-pass-7"},
    )
    assert response.status_code == 302
    assert client.get("/generate/").status_code == 200
    ImageFactory(owner=django_user_model.objects.get(username="newbie"), prompt="my very own fox")
    assert "my very own fox" in client.get("/users/newbie/").content.decode()
    assert client.get("/users/nobody-here/").status_code == 404


# --- quotas and rate limits --------------------------------------------------------------


@override_settings(SEEDBANK_QUOTA_RENDERS_PER_DAY=2)
def test_render_quota_answers_429_with_a_clear_message(client, user, model_version) -> None:
    client.force_login(user)
    ok = post_json(client, "/api/v1/renders", recipe_payload(model_version, batch_size=2))
    assert ok.status_code == 202
    refused = post_json(client, "/api/v1/renders", recipe_payload(model_version))
    assert refused.status_code == 429
    assert "Daily render quota reached: 2 of 2" in refused.json()["error"]
    form = client.post("/generate/", recipe_payload(model_version))
    assert form.status_code == 429 and "Daily render quota reached" in form.content.decode()
    assert RenderJob.objects.count() == 1


@override_settings(SEEDBANK_QUOTA_GPU_SECONDS_PER_DAY=60)
def test_gpu_time_quota(client, user, model_version) -> None:
    RenderJob.objects.create(owner=user, status=RenderJob.Status.DONE, render_seconds=61.0)
    client.force_login(user)
    refused = post_json(client, "/api/v1/renders", recipe_payload(model_version))
    assert refused.status_code == 429 and "GPU-time quota" in refused.json()["error"]


def test_staff_are_exempt_from_quotas(client, staff_user, model_version) -> None:
    with override_settings(SEEDBANK_QUOTA_RENDERS_PER_DAY=1):
        client.force_login(staff_user)
        for _ in range(2):
            assert (
                post_json(client, "/api/v1/renders", recipe_payload(model_version)).status_code
                == 202
            )


@override_settings(SEEDBANK_RATE_GENERATE_PER_MINUTE=2)
def test_generation_rate_limit(client, user, model_version) -> None:
    client.force_login(user)
    codes = [
        post_json(client, "/api/v1/renders", recipe_payload(model_version)).status_code
        for _ in range(3)
    ]
    assert codes == [202, 202, 429]
    response = post_json(client, "/api/v1/renders", recipe_payload(model_version))
    assert "limit is 2 a minute" in response.json()["error"]
    assert 1 <= int(response["Retry-After"]) <= 60


@override_settings(SEEDBANK_RATE_SEARCH_PER_MINUTE=2)
def test_search_rate_limit(client, media) -> None:
    codes = [client.get("/", {"q": "fox"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert "Too many searches" in client.get("/", {"q": "fox"}).content.decode()
    assert client.get("/").status_code == 200  # browsing is not searching


# --- cost dashboard ----------------------------------------------------------------------


def test_dashboard_figures_come_from_render_rows(client, staff_user, media) -> None:
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    a100 = RenderJob.objects.create(
        status=RenderJob.Status.DONE, device="cuda: NVIDIA A100-SXM4-40GB",
        render_seconds=3600.0, finished_at=now,
    )  # fmt: skip
    RenderJob.objects.create(
        status=RenderJob.Status.DONE, device="cpu: AMD EPYC", render_seconds=1800.0,
        finished_at=yesterday,
    )  # fmt: skip
    RenderJob.objects.create(
        status=RenderJob.Status.FAILED, device="cuda: NVIDIA H200", render_seconds=10.0,
        finished_at=now,
    )  # fmt: skip
    RenderJob.objects.create(status=RenderJob.Status.QUEUED)
    ImageFactory.create_batch(2, job=a100, finished_at=now)

    stats = render_stats(days=14)
    a100_price = DevicePrice.objects.get(name_contains="A100").usd_per_hour
    cpu_price = DevicePrice.objects.get(name_contains="CPU").usd_per_hour
    assert stats.finished == 3 and stats.failed == 1
    assert stats.failure_rate == pytest.approx(1 / 3)
    assert stats.render_seconds == pytest.approx(5410.0)
    assert stats.cost_usd == a100_price + cpu_price / 2  # the H200 has no price row
    assert stats.queued == 1 and stats.images == 2
    today = stats.days[-1]
    assert today.images == 2 and today.unpriced_seconds == 10.0

    client.force_login(staff_user)
    body = client.get("/staff/").content.decode()
    assert "33 % (1 failed)" in body
    assert f"{stats.cost_usd.quantize(Decimal('0.0001'))}" in body
    assert "1 queued, 0 running" in body
    assert "<svg" in body


def svg_texts(figure: str, kind: str) -> list[str]:
    return re.findall(rf'<text class="{kind}"[^>]*>([^<]*)</text>', figure)


def test_dashboard_charts_have_axes_values_and_a_table(client, staff_user, media) -> None:
    now = timezone.now()
    today = now.date()  # render_stats' days are UTC days, as are these
    earlier = now - timedelta(days=2)
    # T4 at 0.526 USD/h: 45 s cost 0.006575, 30 s cost 0.004383.
    late = RenderJob.objects.create(
        status=RenderJob.Status.DONE, device="cuda: Tesla T4", render_seconds=45.0,
        finished_at=now,
    )  # fmt: skip
    early = RenderJob.objects.create(
        status=RenderJob.Status.DONE, device="cuda: Tesla T4", render_seconds=30.0,
        finished_at=earlier,
    )  # fmt: skip
    ImageFactory.create_batch(3, job=late, finished_at=now)
    ImageFactory(job=early, finished_at=earlier)

    client.force_login(staff_user)
    body = client.get("/staff/").content.decode()
    images, seconds, cost = body.split('<figure class="chart">')[1:]

    # Axes: 0, the middle and a nice maximum, in each chart's digits.
    assert svg_texts(images, "tick") == ["0", "2", "4"]
    assert svg_texts(seconds, "tick") == ["0.0", "25.0", "50.0"]
    assert svg_texts(cost, "tick") == ["0.0000", "0.0040", "0.0080"]
    # Values above the non-zero bars only, oldest day first.
    assert svg_texts(images, "value") == ["1", "3"]
    assert svg_texts(seconds, "value") == ["30.0", "45.0"]
    assert svg_texts(cost, "value") == ["0.0044", "0.0066"]
    # Day labels every other day for two weeks, ending today.
    assert svg_texts(images, "day") == [
        date_format(today - timedelta(days=n), "M j") for n in (12, 10, 8, 6, 4, 2, 0)
    ]
    label = re.search(r'aria-label="([^"]*)"', images).group(1)
    assert label == f"Images rendered per day: 4 in all, highest 3 on {date_format(today, 'M j')}."
    assert 'role="img"' in images
    assert "Cost per day (USD): 0.0110 in all" in cost

    # The table behind the charts: one row per day, oldest first, with the same numbers.
    table = body.split('data-testid="per-day"')[1].split("</table>")[0]
    assert "<caption>Per day, last 14 days</caption>" in table
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th>(.*?)</tr>', table)
    assert [day for day, _ in rows] == [
        date_format(today - timedelta(days=n), "DATE_FORMAT") for n in range(13, -1, -1)
    ]
    cells = [re.findall(r"<td>([^<]*)</td>", row) for _, row in rows]
    assert cells[-1] == ["3", "1", "0", "45.0", "0.0066"]
    assert cells[-3] == ["1", "1", "0", "30.0", "0.0044"]
    assert cells[-2] == cells[0] == ["0", "0", "0", "0.0", "0.0000"]


def test_dashboard_charts_with_no_renders(client, staff_user, media) -> None:
    client.force_login(staff_user)
    body = client.get("/staff/").content.decode()
    images, seconds, cost = body.split('<figure class="chart">')[1:]
    assert svg_texts(images, "tick") == ["0", "1"]
    assert svg_texts(cost, "tick") == ["0.0000", "0.5000", "1.0000"]
    assert svg_texts(seconds, "value") == []
    assert 'aria-label="Render seconds per day: zero on every day."' in seconds
