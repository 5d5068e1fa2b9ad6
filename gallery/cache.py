"""The shared cache (Redis) as something pages can live without.

Django's RedisCache raises when Redis is stopped or gone, and a stalled Redis makes each call
wait for the socket's timeout: every page that touches the cache (the rate limiter, the page
cache) answered 500 or hung. This backend gives up on a call after a short timeout, then skips
Redis altogether for a few seconds (a circuit breaker: one slow call per process per interval,
not one per request), and answers as an empty cache would: reads miss, writes are dropped.
`incr`, which has no such answer, raises CacheUnavailable so the rate limiter can count
elsewhere (gallery/ratelimit.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A call waits at most this long for Redis (connect, then each reply).
SOCKET_TIMEOUT_SECONDS = 0.25
# After a failure, this process leaves Redis alone for this long before trying again.
RETRY_AFTER_SECONDS = 5.0


class CacheUnavailable(Exception):
    """The shared cache cannot answer (down, stalled, or skipped after a recent failure)."""


class DegradingRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = params.setdefault("OPTIONS", {})
        options.setdefault("socket_timeout", SOCKET_TIMEOUT_SECONDS)
        options.setdefault("socket_connect_timeout", SOCKET_TIMEOUT_SECONDS)
        super().__init__(server, params)
        self._down_until = 0.0
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _call(self, operation: Callable[[], T], fallback: T) -> T:
        try:
            return self._or_raise(operation)
        except CacheUnavailable:
            return fallback

    def _or_raise(self, operation: Callable[[], T]) -> T:
        if not self.available:
            raise CacheUnavailable("the cache failed recently; skipping it for a few seconds")
        try:
            return operation()
        except (RedisError, OSError) as exc:
            with self._lock:
                if self.available:
                    logger.warning(
                        "cache unavailable (%s: %s); pages go on without it for %.0f s",
                        *(type(exc).__name__, exc, RETRY_AFTER_SECONDS),
                    )
                self._down_until = time.monotonic() + RETRY_AFTER_SECONDS
            raise CacheUnavailable(str(exc)) from exc

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> bool:
        return self._call(
            lambda: super(DegradingRedisCache, self).add(key, value, timeout, version), False
        )

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return self._call(
            lambda: super(DegradingRedisCache, self).get(key, default, version), default
        )

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> None:
        self._call(lambda: super(DegradingRedisCache, self).set(key, value, timeout, version), None)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        return self._call(
            lambda: super(DegradingRedisCache, self).touch(key, timeout, version), False
        )

    def delete(self, key: Any, version: Any = None) -> bool:
        return self._call(lambda: super(DegradingRedisCache, self).delete(key, version), False)

    def get_many(self, keys: Any, version: Any = None) -> dict[Any, Any]:
        return self._call(lambda: super(DegradingRedisCache, self).get_many(keys, version), {})

    def has_key(self, key: Any, version: Any = None) -> bool:
        return self._call(lambda: super(DegradingRedisCache, self).has_key(key, version), False)

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> list[Any]:
        return self._call(
            lambda: super(DegradingRedisCache, self).set_many(data, timeout, version), list(data)
        )

    def delete_many(self, keys: Any, version: Any = None) -> None:
        self._call(lambda: super(DegradingRedisCache, self).delete_many(keys, version), None)

    def clear(self) -> None:
        self._call(lambda: super(DegradingRedisCache, self).clear(), None)

    def incr(self, key: Any, delta: int = 1, version: Any = None) -> int:
        return self._or_raise(lambda: super(DegradingRedisCache, self).incr(key, delta, version))
