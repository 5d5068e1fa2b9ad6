"""Two independent reads at once: the second on another pooled connection, in a worker thread.

A hybrid search's vector and keyword lists do not depend on each other, and each is one or two
statements that keep one Postgres backend busy (at 1M records ~8-15 ms for the graph walk,
~7-12 ms for the keyword ranking): on two backends the search waits for the longer, not the sum.

The second read runs on its own connection, so it sees committed rows only: inside a
transaction (a caller's atomic block, every TestCase) both run here, one after the other, and
see what the transaction sees. A side read that has not started by the time the first is done
(every side thread busy with other requests' reads) runs here too, so a request never waits for
another's: connections stay at most web threads + SIDE_THREADS per process.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connection

First = TypeVar("First")
Second = TypeVar("Second")

SIDE_THREADS = 2  # per process; SEEDBANK_DB_POOL_MAX leaves room for them (README)
_side = ThreadPoolExecutor(max_workers=SIDE_THREADS, thread_name_prefix="search-side")


def side_by_side(first: Callable[[], First], second: Callable[[], Second]) -> tuple[First, Second]:
    """(first(), second()), the second on another connection while this thread runs the first,
    when it may (outside a transaction, with pooled connections)."""
    # The postgresql backend's pool (None unless OPTIONS["pool"]): a side thread borrows from it.
    if connection.in_atomic_block or getattr(connection, "pool", None) is None:
        return first(), second()
    future = _side.submit(_on_own_connection, second)
    try:
        result = first()
    except BaseException:
        if not future.cancel():
            future.exception()  # wait: its connection goes back before the error leaves
        raise
    if future.cancel():  # never started: every side thread was busy
        return result, second()
    return result, future.result()


def _on_own_connection(read: Callable[[], Second]) -> Second:
    try:
        return read()
    finally:
        connection.close()  # this thread's connection, back to the pool
