"""Variants: records whose recipes differ only in the seed share Image.variant_key (a stored
column Postgres computes), and the keyset grids show one card per key without dropping or
repeating a record's group across pages."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from engine.recipe import Recipe, recipe_fields
from gallery.selectors import gallery_page
from generator.models import Image
from generator.models.records import _VARIANT_COLUMNS, VARIANT_KEY_IGNORES
from generator.selectors.records import image_variants, user_renders
from generator.services.render_jobs import render_job_create
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch) -> None:
    monkeypatch.setattr("generator.services.render_jobs.job_send", lambda **_: None)


def key(image: Image) -> str:
    return Image.objects.values_list("variant_key", flat=True).get(pk=image.pk)


def test_every_recipe_field_but_the_seed_is_in_the_key() -> None:
    names = {f.name for f in recipe_fields()}
    assert set(_VARIANT_COLUMNS) == (names - VARIANT_KEY_IGNORES) | {"model_name", "model_digest"}


def test_a_batch_is_one_group_and_other_recipes_are_not(user, model_version, queued) -> None:
    recipe = Recipe(model_version_id=model_version.pk, prompt="a koi pond", seed=3, steps=4)
    job = render_job_create(owner=user, recipe=replace(recipe, batch_size=4))
    batch = list(job.images.order_by("batch_index"))
    assert [image.seed for image in batch] == [3, 4, 5, 6]
    assert len({key(image) for image in batch}) == 1
    assert len(key(batch[0])) == 32

    # A single render of another seed is the same recipe: a seed sweep joins the group.
    sweep = render_job_create(owner=user, recipe=replace(recipe, seed=99))
    assert key(sweep.images.get()) == key(batch[0])
    # Anything else that moves pixels is another group.
    for change in ({"prompt": "a koi pond at night"}, {"guidance": 5.0}, {"steps": 5}):
        other = render_job_create(owner=user, recipe=replace(recipe, **change))
        assert key(other.images.get()) != key(batch[0]), change


def test_null_and_empty_values_keep_their_places() -> None:
    """Neighbouring columns cannot run together: a prompt's tail is not the next field."""
    one = ImageFactory(prompt="a b", negative_prompt="c")
    two = ImageFactory(prompt="a", negative_prompt="b c", model_version=one.model_version)
    assert key(one) != key(two)


def _group(prompt: str, size: int, start: timedelta, model_version) -> list[Image]:
    images = [
        ImageFactory(prompt=prompt, seed=100 + n, model_version=model_version) for n in range(size)
    ]
    now = timezone.now()
    for n, image in enumerate(images):
        Image.objects.filter(pk=image.pk).update(created_at=now - start - timedelta(seconds=n))
    return images


def test_keyset_pages_show_each_group_once_at_its_newest(media_root, model_version) -> None:
    """Groups straddling page boundaries: every group appears exactly once, by its newest
    member, in newest-first order; single records page as before."""
    groups = [
        _group(f"prompt {g}", size, timedelta(minutes=g), model_version)
        for g, size in enumerate([1, 4, 2, 1, 3, 1, 5, 1, 2])
    ]
    hidden = ImageFactory(prompt="prompt 1", seed=5000, model_version=model_version, hidden=True)
    expected = [group[0].pk for group in groups]
    for page_size in (1, 2, 3, 4, 10):
        seen, counts, cursor = [], [], None
        while True:
            page = gallery_page(cursor=cursor, page_size=page_size)
            seen += [image.pk for image in page.images]
            counts += [image.variants for image in page.images]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == expected, page_size
        assert counts == [len(group) for group in groups]  # the hidden one is not counted
    assert hidden.pk not in seen


def test_a_new_seed_brings_its_group_to_the_top(media_root, model_version) -> None:
    old = _group("old lighthouse", 2, timedelta(hours=1), model_version)
    newer = _group("newer harbour", 1, timedelta(minutes=5), model_version)
    fresh = ImageFactory(prompt="old lighthouse", seed=7, model_version=model_version)
    page = gallery_page(cursor=None, page_size=10)
    assert [image.pk for image in page.images] == [fresh.pk, newer[0].pk]
    assert page.images[0].variants == 3
    assert old[0].pk not in [image.pk for image in page.images]


def test_a_users_page_groups_their_own_records(media_root, model_version, user) -> None:
    mine = _group("my batch", 4, timedelta(minutes=1), model_version)
    Image.objects.filter(pk__in=[image.pk for image in mine]).update(owner=user)
    page = user_renders(username=user.username, viewer=user, page_size=10)
    assert page is not None
    assert [(image.pk, image.variants) for image in page.images] == [(mine[0].pk, 4)]


def test_the_record_page_lists_its_group_by_seed(media_root, model_version) -> None:
    batch = _group("a batch of four", 4, timedelta(minutes=1), model_version)
    ImageFactory(prompt="a batch of four, but another", model_version=model_version)
    record = Image.objects.get(pk=batch[2].pk)
    listed = image_variants(image=record)
    assert [image.seed for image in listed] == [100, 101, 102, 103]
    assert record.variants == 4


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_key_of_existing_records(media_root, model_version) -> None:
    """Records written before the column existed get their key when it is added (Postgres
    computes a stored generated column for every row as it adds it)."""
    executor = MigrationExecutor(connection)
    before = ("generator", "0015_job_worker_pid_and_cost")
    executor.migrate([before])
    try:
        # Written as the benchmarks' archive and old restores write them: plain SQL.
        with connection.cursor() as cursor:
            cursor.executemany(
                """
                INSERT INTO generator_image (
                    model_name, model_digest, mode, prompt, negative_prompt, seed, scheduler,
                    steps, guidance, width, height, precision, batch_size, batch_index, status,
                    image_file, thumbnail, thumbnail_large, pixel_sha256, hidden, nsfw,
                    featured, created_at)
                VALUES ('tiny', %s, 'txt2img', %s, '', %s, 'PNDM', 20, 7.5, 64, 64, 'fp32', 1, 0,
                        'ready', '', '', '', '', false, false, false, now())
                """,
                [("d" * 64, prompt, seed) for prompt, seed in PRE_MIGRATION],
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    rows = Image.objects.filter(model_digest="d" * 64).order_by("id")
    keys = [image.variant_key for image in rows]
    assert len(keys) == 3
    assert keys[0] == keys[1] != keys[2]
    assert all(len(value) == 32 for value in keys)
    # The same recipe written now joins the old group.
    new = ImageFactory(prompt="a red fox", seed=3, model_name="tiny", model_digest="d" * 64,
                       model_version=None)  # fmt: skip
    assert key(new) == keys[0]


PRE_MIGRATION = [("a red fox", 1), ("a red fox", 2), ("a blue fox", 1)]
