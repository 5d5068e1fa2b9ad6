"""Thin Celery tasks for the `cpu` queue."""

from celery import shared_task


@shared_task(name="search.tasks.embed_image")
def embed_image(image_id: int) -> None:
    from search.services import image_embedding_upsert

    image_embedding_upsert(image_id=image_id)
