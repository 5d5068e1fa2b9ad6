"""End-to-end fixtures: a real Celery worker process on the embedded Postgres + Redis.

Nothing here is faked: the worker is `celery -A config worker` in its own process, reading the
test database through its own connection and rendering with the real diffusers pipeline.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from config import embedded
from config.celery import app
from gallery.management.commands.runstack import worker_command

WORKER_START_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def worker_process(
    django_db_setup: None,
    django_db_blocker,
    tiny_sd_path: Path,
    media_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[subprocess.Popen[bytes]]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings_test",
        # After django_db_setup, connection.settings_dict names the test database.
        DATABASE_URL=embedded.database_url(connection.settings_dict),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        MEDIA_ROOT=str(media_root),
        PYTHONUNBUFFERED="1",
    )
    app.control.purge()  # leftovers of an interrupted run would point at rows that are gone
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            worker_command(), env=env, stdout=log, stderr=subprocess.STDOUT,
            cwd=settings.BASE_DIR,
        )  # fmt: skip
        process.log_path = log_path  # type: ignore[attr-defined]  # read by the topology test
        try:
            _wait_until_ready(process, log_path)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{log_path.read_text()[-4000:]}")
        if app.control.ping(timeout=0.5):
            return
    raise RuntimeError(f"worker not ready in time:\n{log_path.read_text()[-4000:]}")


def wait_for(predicate, *, timeout: float = 90.0, interval: float = 0.25):
    """Poll until predicate() is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def signed_in_session(base_url: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base_url}/accounts/login/").raise_for_status()
    response = session.post(
        f"{base_url}/accounts/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base_url}/accounts/login/"},
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:500]
    return session
