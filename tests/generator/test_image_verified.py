"""Image.verified follows the reproductions through the database's trigger, however they are
written: whether the latest finished one is bit-identical (migration 0023; the record page's
and eviction's meaning), and the migrations set it for reproductions written before them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from generator.models import Image, RenderJob, Reproduction
from generator.selectors.records import image_last_reproduction
from tests.factories import ImageFactory

Verdict = Reproduction.Verdict


def reproduce(image: Image, verdict: str, minute: int = 0) -> Reproduction:
    """A check of the record, finished `minute` minutes after START unless still pending."""
    finished = None if verdict == Verdict.PENDING else START + timedelta(minutes=minute)
    return Reproduction.objects.create(
        image=image, job=RenderJob.objects.create(), verdict=verdict, finished_at=finished
    )


START = datetime(2026, 12, 8, tzinfo=UTC)


def verified(image: Image) -> bool:
    flag = Image.objects.values_list("verified", flat=True).get(pk=image.pk)
    # The record page's and eviction's meaning: its latest finished check is bit-identical.
    last = image_last_reproduction(image=image)
    assert flag == (last is not None and last.verdict == Verdict.BIT_IDENTICAL)
    return flag


@pytest.mark.django_db
def test_the_flag_follows_the_latest_finished_check(media_root) -> None:
    image, other = ImageFactory(), ImageFactory()
    first = reproduce(image, Verdict.PENDING)
    assert not verified(image)
    first.verdict, first.finished_at = Verdict.BIT_IDENTICAL, START  # the worker's verdict
    first.save(update_fields=["verdict", "finished_at"])
    assert verified(image)
    differs = reproduce(image, Verdict.DIFFERS, minute=1)  # a later check that differs
    assert not verified(image)
    reproduce(image, Verdict.PENDING)  # one in flight changes nothing yet
    assert not verified(image)
    again = reproduce(image, Verdict.BIT_IDENTICAL, minute=2)
    assert verified(image)
    reproduce(image, Verdict.FAILED, minute=-5)  # an older check landing late: not the latest
    assert verified(image)
    Reproduction.objects.filter(pk=again.pk).delete()  # the latest is the one that differs
    assert not verified(image)
    Reproduction.objects.filter(pk=first.pk).update(finished_at=START + timedelta(minutes=3))
    assert verified(image)  # a finish time moved: the order recomputed
    Reproduction.objects.filter(pk=differs.pk).update(image=other)  # moved: both recomputed
    assert verified(image) and not verified(other)
    Reproduction.objects.filter(pk=differs.pk).update(verdict=Verdict.BIT_IDENTICAL)
    assert verified(other)
    RenderJob.objects.filter(reproduction__image=other).delete()  # cascades to its check
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
    image, unchecked, since_differs = ImageFactory(), ImageFactory(), ImageFactory()
    reproduce(image, Verdict.BIT_IDENTICAL)
    reproduce(unchecked, Verdict.DIFFERS)
    reproduce(since_differs, Verdict.BIT_IDENTICAL)
    reproduce(since_differs, Verdict.DIFFERS, minute=1)  # 0021 called this one verified
    executor = MigrationExecutor(connection)
    executor.migrate([("generator", "0020_lora_heads_index")])  # no column, no trigger
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert verified(image) and not verified(unchecked) and not verified(since_differs)
