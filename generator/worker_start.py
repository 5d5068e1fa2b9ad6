"""What a render worker does each time it connects to the broker, before taking work.

- On its first connection, it holds nothing: jobs still marked running under its node name
  belonged to its predecessor (killed with the whole worker, so Celery never re-delivered
  them). They are queued again at once instead of waiting out their leases.
- On every connection (the first, and each reconnect after a broker outage), queued jobs whose
  messages the broker no longer holds (it restarted without them) are sent again at once
  instead of waiting for the resend sweep (generator/services/sweeper.py).

A Celery consumer bootstep: the consumer restarts its steps on every reconnect.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

from generator.services.render_jobs import jobs_release_worker
from generator.services.sweeper import jobs_resend_queued

logger = logging.getLogger(__name__)

RENDER_QUEUE = "gpu"


class RecoverJobsOnConnect(bootsteps.StartStopStep):
    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.first_connection = True

    def start(self, parent: Any) -> None:
        if RENDER_QUEUE not in parent.app.amqp.queues.consume_from:
            return
        try:
            if self.first_connection:
                released = jobs_release_worker(worker=parent.hostname)
                if released:
                    logger.warning("released %s job(s) a dead %s held", released, parent.hostname)
            self.first_connection = False
            jobs_resend_queued(waiting_messages=_waiting(parent))
        except Exception:  # the sweeper covers what this misses; never stop the consumer
            logger.exception("recovering jobs on connect failed")


def _waiting(parent: Any) -> int | None:
    """Messages waiting in the render queue, or None when the broker cannot say."""
    try:
        with parent.app.connection_for_read() as connection:
            declared = connection.default_channel.queue_declare(queue=RENDER_QUEUE, passive=True)
        return int(declared.message_count)
    except Exception:  # noqa: BLE001 - unknown means "resend": duplicates are harmless
        return None
