"""Waiting on the worker from a management command, with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError
from django.db.models import QuerySet
from tqdm import tqdm

from generator.selectors.jobs import JobsProgress, jobs_progress


def wait_with_progress(
    *,
    finished: QuerySet[Any],
    total: int,
    desc: str,
    unit: str,
    timeout: float,
    describe: Callable[[], str] | None = None,
) -> None:
    """Poll `finished` (a queryset of done rows) until it counts `total`, drawing progress.
    `describe()`, when given, says at each poll what the bar is waiting for (its label)."""
    deadline = time.monotonic() + timeout
    with tqdm(total=total, desc=desc, unit=unit) as bar:
        while (count := finished.count()) < total:
            bar.update(count - bar.n)
            if describe is not None:
                bar.set_description_str(describe(), refresh=False)
            if time.monotonic() > deadline:
                raise CommandError(f"{desc}: not finished in time; is a worker running?")
            time.sleep(0.5)
        bar.update(count - bar.n)


def render_jobs_description(*, ids: list[int], what: str) -> Callable[[], str]:
    """For wait_with_progress: what render jobs `ids` wait for, in words."""

    def describe() -> str:
        return jobs_waiting_for(jobs_progress(ids=ids), count=len(ids), what=what)

    return describe


def jobs_waiting_for(progress: JobsProgress, *, count: int, what: str) -> str:
    """What is rendering ("rendering demo 3/40 (step 5/20)"), or why nothing is yet: a render
    worker loads its models before it takes its first job (tens of seconds on a CPU)."""
    if not progress.running:
        if not progress.finished:
            return f"{what}: waiting for the render worker (starting, loading models)"
        return f"{what}: waiting for the render worker"
    current = min(progress.finished + 1, count)
    steps = f" (step {progress.step}/{progress.total})" if progress.total else ""
    return f"rendering {what} {current}/{count}{steps}"
