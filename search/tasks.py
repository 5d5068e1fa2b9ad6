"""Thin Celery tasks for the `cpu` queue."""

from typing import Any

from celery import shared_task
from celery.signals import celeryd_after_setup, worker_process_init

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


_embeds_here = False


@celeryd_after_setup.connect
def note_the_queues(sender: str, instance: Any, **kwargs: Any) -> None:
    # In the worker's main process, before the pool forks: does this worker embed?
    global _embeds_here
    _embeds_here = "cpu" in instance.app.amqp.queues.consume_from


@worker_process_init.connect
def load_clip(**kwargs: Any) -> None:
    # The first drain would otherwise wait for CLIP (seconds for a real model).
    if _embeds_here:
        text_embedder_warm()
