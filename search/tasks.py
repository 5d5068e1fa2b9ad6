"""Thin Celery tasks for the `cpu` queue."""

from celery import shared_task

from generator.pool_warmup import warm_pool_processes
from search.selectors import text_embedder_warm
from search.services import EMBED_TASK, embeddings_drain, images_embedding_enqueue


@shared_task(name=EMBED_TASK)
def embed_pending() -> None:
    embeddings_drain()


@shared_task(name="search.tasks.embed_image")
def embed_image(image_id: int) -> None:
    # The one-image task of earlier releases: messages already queued still reach the backlog.
    images_embedding_enqueue(image_ids=[image_id])
    embeddings_drain()


# The first drain would otherwise wait for CLIP (seconds for a real model).
warm_pool_processes(queue="cpu", warm=text_embedder_warm)
