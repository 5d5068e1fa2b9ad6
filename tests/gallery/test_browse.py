"""Gallery pages: keyset pagination, query counts, escaping, remix routing, lineage."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from gallery.selectors import gallery_page
from generator.models import Image, RenderJob, Reproduction
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(media_root, tiny_sd_path):
    return media_root


def test_keyset_pages_walk_everything_once_newest_first(media) -> None:
    same_moment = timezone.now()
    images = ImageFactory.create_batch(7)
    # Ties on created_at must still page deterministically (id breaks them).
    Image.objects.filter(pk__in=[i.pk for i in images[2:5]]).update(created_at=same_moment)
    ImageFactory(status=Image.Status.PENDING)
    ImageFactory(hidden=True)

    seen, cursor = [], None
    while True:
        page = gallery_page(cursor=cursor, page_size=3)
        seen += [image.pk for image in page.images]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = list(
        Image.objects.filter(pk__in=[i.pk for i in images])
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )
    assert seen == expected


def test_home_grid_query_count_does_not_grow_with_rows(
    client, media, django_assert_max_num_queries
) -> None:
    ImageFactory.create_batch(30)
    with django_assert_max_num_queries(3):
        response = client.get("/")
    assert response.status_code == 200
    assert response.content.decode().count('class="card"') == 24
    assert "Older images" in response.content.decode()


def test_bad_cursor_is_ignored_not_500(client, media) -> None:
    ImageFactory()
    assert client.get("/", {"before": "garbage~x"}).status_code == 200


def test_prompts_are_escaped_everywhere(client, media) -> None:
    image = ImageFactory(prompt='<script>alert("x")</script> fox')
    for url in ("/", f"/images/{image.pk}/"):
        body = client.get(url).content.decode()
        assert "<script>alert" not in body
        assert "&lt;script&gt;alert" in body


def test_detail_shows_recipe_environment_and_lineage(client, media) -> None:
    parent = ImageFactory(prompt="the parent")
    child = ImageFactory(prompt="the child", parent=parent, environment={"torch": "2.13.0"})
    body = client.get(f"/images/{child.pk}/").content.decode()
    assert f'href="/images/{parent.pk}/"' in body
    assert "&quot;seed&quot;: " in body and "Copy recipe" in body and "2.13.0" in body
    body = client.get(f"/images/{parent.pk}/").content.decode()
    assert f'href="/images/{child.pk}/"' in body


def test_hidden_and_unfinished_records_are_404(client, media) -> None:
    for image in (ImageFactory(hidden=True), ImageFactory(status=Image.Status.PENDING)):
        assert client.get(f"/images/{image.pk}/").status_code == 404


def test_remix_needs_sign_in(client, media) -> None:
    image = ImageFactory()
    response = client.get(f"/images/{image.pk}/remix/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def _remix_form(image: Image) -> dict:
    return {
        "model_version": image.model_version_id,
        "prompt": image.prompt,
        "negative_prompt": image.negative_prompt,
        "seed": image.seed,
        "scheduler": image.scheduler,
        "steps": image.steps,
        "guidance": image.guidance,
        "width": image.width,
        "height": image.height,
        "precision": image.precision,
        "batch_size": 1,
    }


def test_unchanged_remix_is_a_reproduction(client, user, model_version, media) -> None:
    image = ImageFactory(model_version=model_version)
    client.force_login(user)
    response = client.post(f"/images/{image.pk}/remix/", _remix_form(image))
    assert response.status_code == 302
    job = RenderJob.objects.get()
    assert job.kind == RenderJob.Kind.REPRODUCE
    assert Reproduction.objects.get().image == image
    assert Image.objects.count() == 1


def test_edited_remix_is_a_child(client, user, model_version, media) -> None:
    image = ImageFactory(model_version=model_version)
    client.force_login(user)
    response = client.post(f"/images/{image.pk}/remix/", _remix_form(image) | {"steps": 30})
    assert response.status_code == 302
    child = Image.objects.exclude(pk=image.pk).get()
    assert child.parent == image and child.steps == 30 and child.seed == image.seed
    assert RenderJob.objects.get().kind == RenderJob.Kind.RENDER


def test_job_pages_are_private_to_owner_and_staff(
    client, user, staff_user, django_user_model, media
) -> None:
    job = RenderJob.objects.create(owner=user)
    stranger = django_user_model.objects.create_user(username="eve", password="x")
    client.force_login(stranger)
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/api/v1/jobs/{job.pk}").status_code == 404
    for viewer in (user, staff_user):
        client.force_login(viewer)
        assert client.get(f"/jobs/{job.pk}/").status_code == 200
        assert client.get(f"/api/v1/jobs/{job.pk}").json()["status"] == "queued"


def test_model_gone_is_explained_and_remix_refused(client, user, model_version, media) -> None:
    image = ImageFactory(model_version=model_version)
    client.force_login(user)
    model_version.weights_digest = "0" * 64  # re-registered with other weights
    model_version.save(update_fields=["weights_digest"])
    body = client.get(f"/images/{image.pk}/").content.decode()
    assert "is now registered with weights digest" in body and image.model_digest in body
    response = client.post(f"/images/{image.pk}/remix/", _remix_form(image))
    assert response.status_code == 400
    assert image.model_digest in response.content.decode()

    model_version.delete()
    image.refresh_from_db()
    body = client.get(f"/images/{image.pk}/").content.decode()
    assert "has been deleted" in body and image.model_digest in body
    assert RenderJob.objects.count() == 0


def test_generate_form_takes_any_subset_of_a_record(client, user, model_version, media) -> None:
    image = ImageFactory(model_version=model_version, prompt="a red fox", seed=4242, steps=33)
    client.force_login(user)

    def initial(use: str) -> dict:
        response = client.get("/generate/", {"from": image.pk, "use": use})
        return {k: v for k, v in response.context["form"].initial.items() if k != "model_version"}

    assert initial("prompt") == {"prompt": "a red fox", "negative_prompt": ""}
    assert initial("seed") == {"seed": 4242}
    assert initial("prompt,seed") == {"prompt": "a red fox", "negative_prompt": "", "seed": 4242}
    assert initial("all")["steps"] == 33 and initial("all")["seed"] == 4242


def test_record_page_query_count_does_not_grow_with_neighbours_or_lineage(
    client, media, django_assert_max_num_queries
) -> None:
    """Grids of similar records, remixes and near-duplicates load their rows in one query each
    (not one per card), and the environment is joined to the record's own row only."""
    import numpy as np

    from search.models import EMBEDDING_DIM, ImageEmbedding
    from search.selectors import active_model_name

    rng = np.random.default_rng(1)
    parent = ImageFactory(prompt="the parent")
    record = ImageFactory(prompt="the record", parent=parent, environment={"torch": "2.13.0"})
    remixes = ImageFactory.create_batch(5, parent=record)
    others = ImageFactory.create_batch(20)
    for image in [parent, record, *remixes, *others]:
        vector = rng.normal(size=EMBEDDING_DIM)
        ImageEmbedding.objects.create(
            image=image,
            model_name=active_model_name(),
            dim=EMBEDDING_DIM,
            embedding=(vector / np.linalg.norm(vector)).astype(np.float32),
        )
    from search.selectors import active_embedding_model
    from search.services import embedding_model_ensure_registered

    embedding_model_ensure_registered(
        model=active_embedding_model()
    )  # as on any site with vectors: one active model
    client.get(f"/images/{record.pk}/")  # settle per-process caches (CLIP, query vectors)
    # The record, its pending restore, the active model, its vector, the neighbours, their rows,
    # the remixes, the last reproduction, the imported row its prompt came from (if it was
    # rendered from one), its variants (same recipe but the seed), the neighbours' variant keys
    # (their group sizes come with their rows) and its likes: 12, whatever the number of cards.
    with django_assert_max_num_queries(12) as captured:
        body = client.get(f"/images/{record.pk}/").content.decode()
    assert body.count('class="card') == 8  # the similar records
    # Each says so in words, its cosine in the tooltip (no "score 0.998" on the card).
    assert body.count('data-testid="similarity"') == 8 and ">Looks alike</p>" in body
    assert re.search(r'title="cosine similarity -?[\d.]+">Looks alike</p>', body)
    assert ">score " not in body
    assert all(f'href="/images/{remix.pk}/"' in body for remix in remixes)
    assert "2.13.0" in body
    # Only the record itself is read with its environment, in the same query as its row.
    wide = [q["sql"] for q in captured if "generator_imageenvironment" in q["sql"]]
    assert len(wide) == 1 and '"generator_image"."prompt"' in wide[0], wide


def test_a_hidden_parent_is_linked_for_staff_only(client, media, django_user_model) -> None:
    parent = ImageFactory(prompt="hidden parent", hidden=True)
    child = ImageFactory(prompt="visible child", parent=parent)
    assert f'href="/images/{parent.pk}/"' not in client.get(f"/images/{child.pk}/").content.decode()
    staff = django_user_model.objects.create_user("curator", is_staff=True)
    client.force_login(staff)
    assert f'href="/images/{parent.pk}/"' in client.get(f"/images/{child.pk}/").content.decode()


def test_head_is_answered_like_get_without_a_body(client, media) -> None:
    image = ImageFactory()
    for url in ("/", f"/images/{image.pk}/", "/search/?q=fox"):
        response = client.head(url)
        assert response.status_code == 200 and response.content == b"", url


def test_search_filters_list_models_from_the_registry_not_the_records(
    client, media, model_version
) -> None:
    """A DISTINCT over every record ran on each search page (68 ms at 100k records)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ImageFactory(model_version=model_version, model_name=str(model_version))
    with CaptureQueriesContext(connection) as captured:
        body = client.get("/search/").content.decode()
    assert f'value="{model_version}"' in body
    assert not [q["sql"] for q in captured if "DISTINCT" in q["sql"].upper()]


def test_grids_offer_webp_previews_by_width(client, media) -> None:
    from generator.services.records import image_store_pixels
    from tests.factories import UserFactory
    from tests.generator.test_previews import _png

    image = ImageFactory(width=768, height=512, owner=UserFactory())
    image_store_pixels(image=image, png=_png(768, 512), pixel_sha256="d" * 64)
    image.refresh_from_db()
    for url in ("/", f"/users/{image.owner.username}/"):
        body = client.get(url).content.decode()
        assert f'src="{image.thumbnail.url}"' in body
        assert f"{image.thumbnail.url} 256w, {image.thumbnail_large.url} 512w" in body
        assert 'sizes="(max-width: 480px) 45vw, 240px"' in body
        assert 'width="768" height="512" loading="lazy"' in body


def test_user_page_pages_by_keyset_with_a_plain_next_link(client, media, settings) -> None:
    from tests.factories import UserFactory

    settings.SEEDBANK_GALLERY_PAGE_SIZE = 3
    owner = UserFactory()
    mine = ImageFactory.create_batch(5, owner=owner)
    ImageFactory.create_batch(2)  # someone else's
    first = client.get(f"/users/{owner.username}/").content.decode()
    assert first.count('class="card"') == 3 and 'rel="next"' in first
    cursor = first.split("?before=")[1].split('"')[0]
    second = client.get(f"/users/{owner.username}/?before={cursor}").content.decode()
    assert second.count('class="card"') == 2 and 'rel="next"' not in second
    shown = [f'href="/images/{image.pk}/"' for image in mine]
    assert all(link in first + second for link in shown)
    assert (
        client.get(f"/users/{owner.username}/", {"before": "x~99999999999999999999"}).status_code
        == 200
    )


def test_search_pages_by_rank_and_refuses_pages_past_the_bound(client, media, settings) -> None:
    settings.SEEDBANK_GALLERY_PAGE_SIZE = 2
    for n in range(5):
        ImageFactory(prompt=f"lighthouse in a storm number {n}")
    from generator.services.records import image_keywords_index

    image_keywords_index(image_ids=Image.objects.values_list("pk", flat=True))
    pages = []
    for number in (1, 2, 3):
        body = client.get("/search/", {"q": "lighthouse", "mode": "keyword", "page": number})
        pages.append(body.content.decode())
    links = [{part.split('"')[0] for part in page.split('href="/images/')[1:]} for page in pages]
    assert [len(found) for found in links] == [2, 2, 1]
    assert not (links[0] & links[1]) and not (links[1] & links[2])  # no record twice
    assert "page=2" in pages[0] and "page=3" in pages[1] and 'rel="next"' not in pages[2]
    for bad in ("0", "9", "x", "1e9"):
        assert client.get("/search/", {"q": "lighthouse", "page": bad}).status_code == 400
