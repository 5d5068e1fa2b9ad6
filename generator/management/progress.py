"""Waiting on the worker from a management command, with a progress bar."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError
from django.db.models import QuerySet
from tqdm import tqdm


def wait_with_progress(
    *, finished: QuerySet[Any], total: int, desc: str, unit: str, timeout: float
) -> None:
    """Poll `finished` (a queryset of done rows) until it counts `total`, drawing progress."""
    deadline = time.monotonic() + timeout
    with tqdm(total=total, desc=desc, unit=unit) as bar:
        while (count := finished.count()) < total:
            bar.update(count - bar.n)
            if time.monotonic() > deadline:
                raise CommandError(f"{desc}: not finished in time; is a worker running?")
            time.sleep(0.5)
        bar.update(count - bar.n)
