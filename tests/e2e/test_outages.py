"""The whole stack through a Redis outage, as an operator meets one: the broker and the shared
cache on one real Redis (as under `make run`), stalled with SIGSTOP and then killed, while
visitors load pages and users submit renders. Nothing answers 500 (a 503 only with
Retry-After), every stored job renders exactly once after Redis is back, and nothing waits for
the ten-minute resend sweep.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gallery.management.commands.runstack import (
    beat_command,
    cpu_worker_command,
    web_command,
    worker_command,
)
from generator.models import Image, RenderJob
from tests.e2e.conftest import Processes, healthy, signed_in_session, wait_for, worker_environment
from tests.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Long enough for every client-side timeout to fire several times (the operator's check used
# 30 s; docs/deploying.md).
STALL_SECONDS = 10
DEAD_SECONDS = 5


@pytest.fixture
def stack(
    redis_server: RedisServer, media_root: Path, tmp_path: Path
) -> Iterator[tuple[Processes, str]]:
    env = worker_environment(media_root) | {
        "CELERY_BROKER_URL": redis_server.url(0),
        "SEEDBANK_CACHE_URL": redis_server.url(1),
        "SEEDBANK_PAGE_CACHE_SECONDS": "10",
        "SEEDBANK_SWEEP_SECONDS": "1",
        "SEEDBANK_WEB_WORKERS": "1",
        "SEEDBANK_RATE_GENERATE_PER_MINUTE": "1000",
    }
    port = free_port()
    running = Processes(env, tmp_path)
    try:
        running.spawn("web", web_command(f"127.0.0.1:{port}"))
        running.spawn("beat", beat_command())
        running.spawn("cpu", cpu_worker_command("outage-cpu"))
        running.spawn("gpu", worker_command("outage-gpu"))
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: healthy(base), timeout=180)
        yield running, base
    finally:
        running.stop()


def test_a_stalled_then_killed_redis_costs_no_500_and_loses_no_job(
    stack, redis_server: RedisServer, model_version, user
) -> None:
    _, base = stack
    session = signed_in_session(base, user.username, "pw-for-tests-1")
    answers: list[tuple[str, int, str | None]] = []
    jobs: list[int] = []

    def submit(n: int) -> None:
        response = session.post(
            f"{base}/api/v1/renders",
            json={"prompt": f"a harbour {n}", "seed": 500 + n, "steps": 4},
            headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": f"{base}/"},
            timeout=30,
        )
        answers.append(("submit", response.status_code, response.headers.get("Retry-After")))
        if response.status_code == 202:
            jobs.append(int(response.json()["id"]))

    def browse() -> None:
        for path in ("/", "/search/?q=harbour", "/healthz?workers=0"):
            started = time.monotonic()
            response = requests.get(f"{base}{path}", timeout=30)
            answers.append((path, response.status_code, response.headers.get("Retry-After")))
            if path.startswith("/healthz"):
                assert time.monotonic() - started < 2.5  # its deadline is 1.5 s

    submit(0)
    # The workers are up and consuming before the outage (a worker still starting is the
    # supervisor's to restart, and none runs here).
    first = RenderJob.objects.filter(pk__in=jobs, status=RenderJob.Status.DONE)
    wait_for(first.exists, timeout=300)
    redis_server.pause()
    stalled_until = time.monotonic() + STALL_SECONDS
    n = 1
    while time.monotonic() < stalled_until:
        submit(n)
        browse()
        n += 1
    redis_server.resume()
    submit(n)
    redis_server.kill()
    dead_until = time.monotonic() + DEAD_SECONDS
    while time.monotonic() < dead_until:
        n += 1
        submit(n)
        browse()
    redis_server.start()
    back_at = time.monotonic()

    failures = [a for a in answers if a[1] >= 500 and not (a[1] == 503 and a[2])]
    assert failures == [], failures
    assert len([a for a in answers if a[0] == "submit"]) == len(jobs) >= 5  # all stored
    done = RenderJob.objects.filter(pk__in=jobs, status=RenderJob.Status.DONE)
    # Generous: this asserts that every job is done exactly once, not how fast renders are.
    wait_for(lambda: done.count() == len(jobs), timeout=300)
    print(f"{len(jobs)} jobs done {time.monotonic() - back_at:.1f} s after Redis came back")
    assert set(done.values_list("attempts", flat=True)) == {1}
    assert Image.objects.filter(job__in=jobs, status=Image.Status.READY).count() == len(jobs)
