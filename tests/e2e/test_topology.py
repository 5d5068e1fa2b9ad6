"""The site is not tied to one process: two gunicorn web processes and two Celery workers share
Postgres and Redis reached by URL (as an operator runs them). Jobs submitted through either web
process render, each exactly once, and the records are readable through the other."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from config import embedded
from gallery.management.commands.runstack import web_command, worker_command
from generator.models import RenderJob
from tests.e2e.conftest import signed_in_session, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
JOBS = 8


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def stack(
    worker_process, media_root: Path, tmp_path: Path
) -> Iterator[tuple[list[str], list[Path]]]:
    """Two more processes of each kind next to the session's worker: web A, web B, worker 2."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": embedded.database_url(connection.settings_dict),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(media_root),
        "SEEDBANK_WEB_WORKERS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    ports = [_free_port(), _free_port()]
    logs = [tmp_path / "web-a.log", tmp_path / "web-b.log", tmp_path / "worker-2.log"]
    commands = [web_command(f"127.0.0.1:{port}") for port in ports]
    commands.append(worker_command("second"))
    processes = []
    for command, log in zip(commands, logs, strict=True):
        with log.open("wb") as handle:
            process = subprocess.Popen(
                command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR
            )
        processes.append(process)
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base in bases:
            wait_for(lambda base=base: _answers(base), timeout=120)
        yield bases, [worker_process.log_path, logs[2]]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz?workers=0", timeout=5).status_code == 200
    except requests.RequestException:  # not listening yet, or busy loading CLIP
        return False


def test_two_web_processes_and_two_workers_render_every_job_once(
    stack, user, model_version
) -> None:
    (base_a, base_b), logs = stack
    sessions = [
        signed_in_session(base, user.username, "pw-for-tests-1") for base in (base_a, base_b)
    ]
    submitted: dict[int, str] = {}
    for n in range(JOBS):
        base, session = ((base_a, sessions[0]), (base_b, sessions[1]))[n % 2]
        response = session.post(
            f"{base}/api/v1/renders",
            json={"prompt": f"a lighthouse number {n}", "seed": 500 + n, "steps": 8},
            headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": f"{base}/"},
        )
        assert response.status_code == 202, response.text
        submitted[response.json()["id"]] = base

    done = RenderJob.objects.filter(pk__in=submitted, status=RenderJob.Status.DONE)
    wait_for(lambda: done.count() == JOBS, timeout=240)
    # Readable through the other web process than the one that took it.
    for job_id, base in submitted.items():
        other = base_b if base == base_a else base_a
        session = sessions[1] if other == base_b else sessions[0]
        payload = session.get(f"{other}/api/v1/jobs/{job_id}").json()
        assert payload["status"] == "done" and payload["images"][0]["status"] == "ready"

    # Every job rendered exactly once, across both workers' logs.
    worker_logs = logs
    rendered = Counter(
        int(job_id)
        for log in worker_logs
        if log.is_file()
        for job_id in re.findall(r"job (\d+) rendered", log.read_text(errors="replace"))
        if int(job_id) in submitted
    )
    assert rendered == Counter({job_id: 1 for job_id in submitted}), rendered
