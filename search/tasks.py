"""Thin Celery tasks for the `cpu` queue."""

from celery import shared_task

from search.services import EMBED_TASK, image_embedding_upsert


@shared_task(name=EMBED_TASK)
def embed_image(image_id: int) -> None:
    image_embedding_upsert(image_id=image_id)
