"""The site against a real Redis that stalls (SIGSTOP) or dies: the cache answers as an empty
one within its short timeout and then stays out of the way, rate limits count in each process
meanwhile, pages and submissions never answer 500, and /healthz answers within its deadline
saying what is down. (tests/e2e/test_outages.py runs the whole stack through the same faults.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from unittest.mock import ANY

import pytest
from django.core.cache import caches
from django.test import override_settings

from config import health
from gallery import cache as degrading
from gallery import ratelimit
from gallery.cache import CacheUnavailable, DegradingRedisCache
from gallery.management.stack_status import STATUS_FILE, write_stack_status
from tests.redis_server import RedisServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared_cache(redis_server: RedisServer, monkeypatch) -> Iterator[DegradingRedisCache]:
    """The site's cache on the real Redis, as under `make run`; a short breaker for tests."""
    monkeypatch.setattr(degrading, "RETRY_AFTER_SECONDS", 0.5)
    backend = {"BACKEND": "gallery.cache.DegradingRedisCache", "LOCATION": redis_server.url(1)}
    with override_settings(CACHES={"default": backend}):  # Django swaps the cache handlers
        yield caches["default"]


def timed(call):
    started = time.monotonic()
    value = call()
    return value, time.monotonic() - started


def test_a_stalled_cache_answers_as_an_empty_one_within_its_timeout(
    redis_server: RedisServer, shared_cache: DegradingRedisCache
) -> None:
    shared_cache.set("k", "v", 60)
    assert shared_cache.get("k") == "v" and shared_cache.available
    redis_server.pause()
    value, seconds = timed(lambda: shared_cache.get("k", "missing"))
    assert value == "missing" and seconds < 1.0  # one socket timeout (0.25 s), not forever
    assert not shared_cache.available
    # Meanwhile Redis is skipped altogether: no wait at all.
    (_, seconds) = timed(lambda: [shared_cache.set("a", 1, 60) for _ in range(20)])
    assert seconds < 0.1
    with pytest.raises(CacheUnavailable):
        shared_cache.incr("k")
    redis_server.resume()
    time.sleep(0.6)  # the breaker's interval
    assert shared_cache.get("k") == "v" and shared_cache.available


def test_a_killed_cache_is_skipped_and_used_again_once_it_is_back(
    redis_server: RedisServer, shared_cache: DegradingRedisCache
) -> None:
    redis_server.kill()
    assert shared_cache.add("k", 1, 60) is False
    assert shared_cache.get_many(["a", "b"]) == {}
    redis_server.start()
    time.sleep(0.6)
    assert shared_cache.add("k", 1, 60) is True and shared_cache.get("k") == 1


def test_rate_limits_count_in_the_process_while_the_cache_is_down(
    redis_server: RedisServer, shared_cache: DegradingRedisCache
) -> None:
    redis_server.pause()
    identity = f"ip:outage-{time.monotonic()}"
    waits = [
        ratelimit.hit(scope="generate", identity=identity, limit=3, window=3600) for _ in range(5)
    ]
    assert waits[:3] == [None, None, None]
    assert all(wait is not None and 0 < wait <= 3600 for wait in waits[3:])


@override_settings(SEEDBANK_RATE_SEARCH_PER_MINUTE=2)
def test_pages_and_submissions_never_answer_500_with_the_cache_stalled(
    redis_server: RedisServer, shared_cache: DegradingRedisCache, client, user, model_version
) -> None:
    redis_server.pause()
    started = time.monotonic()
    assert client.get("/").status_code == 200
    assert client.get("/search/", {"q": "lighthouse"}).status_code == 200
    assert client.get("/search/", {"q": "lighthouse"}).status_code == 200
    refused = client.get("/search/", {"q": "lighthouse"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0  # still limited
    client.force_login(user)
    response = client.post(
        "/api/v1/renders", {"prompt": "a harbour", "steps": 4}, content_type="application/json"
    )
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert time.monotonic() - started < 5


def test_healthz_answers_within_its_deadline_and_says_what_is_down(
    redis_server: RedisServer, shared_cache: DegradingRedisCache, client, monkeypatch
) -> None:
    assert client.get("/healthz", {"workers": "0"}).json()["cache"]["ok"] is True
    redis_server.pause()

    def stalled_broker() -> None:
        time.sleep(10)  # a broker that accepts the connection and never answers

    monkeypatch.setattr(health, "_broker", stalled_broker)
    response, seconds = timed(lambda: client.get("/healthz", {"workers": "0"}))
    assert seconds < 2.0
    body = response.json()
    assert response.status_code == 503 and body["status"] == "unavailable"
    assert body["database"]["ok"] is True
    assert body["broker"] == {"ok": False, "error": "no answer within 1.5 s"}
    assert body["cache"]["ok"] is False and body["down"] == ["broker", "cache"]


def test_healthz_says_which_supervised_process_is_backing_off(client, settings, tmp_path) -> None:
    """Under `make run` the supervisor's status file says how its children are; a crash loop
    shows on the health page while the site itself stays healthy."""
    settings.VAR_DIR = tmp_path
    write_stack_status(
        tmp_path / "run" / STATUS_FILE,
        supervisor_pid=1,
        children={
            "web server": {"state": "running", "pid": 10, "detail": "running"},
            "gpu worker": {"state": "backing off", "pid": None, "next_start_in_s": 8.0,
                           "detail": "exited 7 times in the last minute"},
        },
    )  # fmt: skip
    body = client.get("/healthz", {"workers": "0"}).json()
    assert body["status"] == "ok" and "stack" in body["down"]
    assert body["stack"]["down"] == ["gpu worker"]
    assert body["stack"]["children"]["gpu worker"]["state"] == "backing off"

    stale = json.loads((tmp_path / "run" / STATUS_FILE).read_text()) | {"updated": 0}
    (tmp_path / "run" / STATUS_FILE).write_text(json.dumps(stale))
    body = client.get("/healthz", {"workers": "0"}).json()
    assert body["stack"] == {"ok": False, "error": ANY}
    assert "stopped reporting" in body["stack"]["error"]
