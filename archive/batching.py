"""Lists of `size` items from any iterable: imports write and exports encode in batches.

(Python 3.12's itertools.batched; the project runs on 3.11.)"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
