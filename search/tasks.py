"""Thin Celery tasks for the `cpu` queue."""

from celery import shared_task

from search.services import EMBED_TASK, embeddings_drain, images_embedding_enqueue


@shared_task(name=EMBED_TASK)
def embed_pending() -> None:
    embeddings_drain()


@shared_task(name="search.tasks.embed_image")
def embed_image(image_id: int) -> None:
    # The one-image task of earlier releases: messages already queued still reach the backlog.
    images_embedding_enqueue(image_ids=[image_id])
    embeddings_drain()
