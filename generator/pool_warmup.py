"""Loading models when a Celery pool process starts, in the workers that need them.

A worker consuming `gpu` loads the default diffusion model, one consuming `cpu` loads CLIP; a
worker on both loads both. Which queues a worker consumes is known in its main process before
the pool forks (celeryd_after_setup), and the forked pool processes inherit the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery.signals import celeryd_after_setup, worker_process_init


def warm_pool_processes(*, queue: str, warm: Callable[[], None]) -> None:
    """Call `warm` in every pool process of a worker that consumes `queue`, as it starts.
    (CELERY_WORKER_PROC_ALIVE_TIMEOUT gives it longer than Celery's 4 s default.)"""
    consumes = False

    def note_the_queues(sender: str, instance: Any, **kwargs: Any) -> None:
        nonlocal consumes
        consumes = queue in instance.app.amqp.queues.consume_from

    def load(**kwargs: Any) -> None:
        if consumes:
            warm()

    # Strong references: these closures live nowhere else.
    celeryd_after_setup.connect(note_the_queues, weak=False)
    worker_process_init.connect(load, weak=False)
