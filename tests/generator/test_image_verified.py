"""Image.verified follows the reproductions through the database's trigger, however they are
written, and migration 0021 sets it for reproductions written before it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from generator.models import Image, RenderJob, Reproduction
from tests.factories import ImageFactory

Verdict = Reproduction.Verdict


def reproduce(image: Image, verdict: str) -> Reproduction:
    return Reproduction.objects.create(image=image, job=RenderJob.objects.create(), verdict=verdict)


def verified(image: Image) -> bool:
    return Image.objects.values_list("verified", flat=True).get(pk=image.pk)


@pytest.mark.django_db
def test_the_flag_follows_inserts_verdicts_moves_and_deletes(media_root) -> None:
    image, other = ImageFactory(), ImageFactory()
    pending = reproduce(image, Verdict.PENDING)
    assert not verified(image)
    pending.verdict = Verdict.BIT_IDENTICAL  # the worker's verdict lands
    pending.save(update_fields=["verdict"])
    assert verified(image)
    differs = reproduce(image, Verdict.DIFFERS)  # a later check that differs keeps the first
    assert verified(image)
    Reproduction.objects.filter(pk=pending.pk).update(image=other)  # moved: both recomputed
    assert not verified(image) and verified(other)
    Reproduction.objects.filter(pk=differs.pk).update(verdict=Verdict.BIT_IDENTICAL)
    assert verified(image)
    Reproduction.objects.filter(pk=differs.pk).delete()
    assert not verified(image)
    RenderJob.objects.filter(reproduction__image=other).delete()  # cascades to its reproduction
    assert not verified(other)


@pytest.mark.django_db
def test_plain_sql_writes_keep_it_too(media_root) -> None:
    image = ImageFactory()
    job = RenderJob.objects.create()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO generator_reproduction (verdict, image_file, pixel_sha256, environment,"
            " environment_diff, created_at, image_id, job_id, purpose, whole_batch)"
            " VALUES ('bit-identical', '', '', '{}', '{}', now(), %s, %s, 'check', true)",
            [image.pk, job.pk],
        )
    assert verified(image)


@pytest.mark.django_db(transaction=True)
def test_the_migration_sets_it_for_earlier_reproductions(media_root) -> None:
    image, unchecked = ImageFactory(), ImageFactory()
    reproduce(image, Verdict.BIT_IDENTICAL)
    reproduce(unchecked, Verdict.DIFFERS)
    executor = MigrationExecutor(connection)
    executor.migrate([("generator", "0020_lora_heads_index")])  # no column, no trigger
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert verified(image) and not verified(unchecked)
