"""Keeping a running job's lease alive from a thread, however long one denoising step takes.

Progress writes between steps renew the lease too, but one step of a 1024² SDXL render on a
slow device can outlast the lease, and a job whose lease runs out is taken for a dead worker's
(generator/services/sweeper.py). The keeper renews it every quarter lease while the render
runs, so only a dead process (or a cancel) ends an attempt; when it finds the job cancelled or
taken over, the next step raises JobStopped.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from django.conf import settings
from django.db import connection

from generator.models import RenderJob
from generator.services.render_jobs import JobStopped, render_job_lease_renew

logger = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, job: RenderJob, *, every: float | None = None) -> None:
        self.job = job
        self.every = every if every is not None else settings.SEEDBANK_JOB_LEASE_SECONDS / 4
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._keep, name=f"lease-keeper-{job.pk}", daemon=True
        )

    def __enter__(self) -> LeaseKeeper:
        # The thread has its own connection and sees committed rows only: a render inside a
        # transaction (a caller's atomic block, every TestCase) would look to it like a job
        # taken over, and stop after lease / 4 on a slow machine. There the per-step progress
        # writes, in the caller's transaction, renew the lease.
        if not connection.in_atomic_block:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join()

    def raise_if_lost(self) -> None:
        """Called between steps: stop the render once the job is no longer this attempt's."""
        if self.lost.is_set():
            raise JobStopped(f"job {self.job.pk} was cancelled or taken over")

    def _keep(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    held = render_job_lease_renew(job=self.job)
                except Exception:
                    logger.warning("could not renew job %s's lease", self.job.pk, exc_info=True)
                    continue
                if not held:
                    self.lost.set()
                    return
        finally:
            # The thread's own database connection (Django opens one per thread).
            connection.close()
