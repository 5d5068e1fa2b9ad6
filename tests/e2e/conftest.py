"""End-to-end fixtures: a real Celery worker process on the embedded Postgres + Redis.

Nothing here is faked: the worker is `celery -A config worker` in its own process, reading the
test database through its own connection and rendering with the real diffusers pipeline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.db import connection
from playwright.sync_api import Browser, Page, sync_playwright

from config import embedded
from config.celery import app
from gallery.management.commands.runstack import cpu_worker_command, worker_command
from tools.chromium import CHROMIUM, CHROMIUM_ARGS

WORKER_START_TIMEOUT_S = 120
E2E_LEASE_SECONDS = 30


class Workers:
    """The real worker processes of a deployment: a render (gpu) worker and a cpu worker
    (embeddings). Each runs in its own session, so a test can kill -9 a whole worker (main
    process and pool) the way a machine crash would, and start a new one."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.gpu: subprocess.Popen[bytes] | None = None
        self.cpu: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"gpu-{self.starts}.log"

    running = False  # the session's workers have started (and serve every test after)

    def start(self) -> None:
        Workers.running = True
        self.cpu = self._spawn(cpu_worker_command(), self.log_dir / "cpu.log")
        self.start_gpu()

    def start_gpu(self) -> None:
        self.starts += 1
        self.gpu = self._spawn(worker_command(), self.log_path)
        _wait_until_ready(self.gpu, self.log_path, name="gpu@")

    def kill_gpu(self) -> None:
        """SIGKILL to the render worker's whole process group: no cleanup, no acks."""
        assert self.gpu is not None
        os.killpg(self.gpu.pid, signal.SIGKILL)
        self.gpu.wait(timeout=30)

    def stop(self) -> None:
        Workers.running = False
        for process in (self.gpu, self.cpu):
            if process is not None and process.poll() is None:
                process.terminate()
        for process in (self.gpu, self.cpu):
            if process is None:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def _spawn(self, command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        with log_path.open("wb") as log:
            return subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                cwd=settings.BASE_DIR, start_new_session=True,
            )  # fmt: skip


class Processes:
    """Processes of a deployment a test starts itself (web, beat, workers), each in its own
    session and with its own log; stop() ends them all, SIGKILL for any that will not go."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, command: list[str]) -> None:
        with (self.log_dir / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                cwd=settings.BASE_DIR, start_new_session=True,
            )  # fmt: skip
        self.processes.append(process)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def healthy(base: str) -> bool:
    """Whether the site at `base` answers its health check (database and broker up)."""
    try:
        return requests.get(f"{base}/healthz?workers=0", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def worker_environment(media_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings_test",
        # After django_db_setup, connection.settings_dict names the test database.
        DATABASE_URL=embedded.database_url(connection.settings_dict),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        MEDIA_ROOT=str(media_root),
        PYTHONUNBUFFERED="1",
        # Longer than the fault tests' re-queue bound: a re-queue in time is not the lease's.
        SEEDBANK_JOB_LEASE_SECONDS=str(E2E_LEASE_SECONDS),
    )
    return env


@pytest.fixture(scope="session")
def worker_process(
    django_db_setup: None,
    django_db_blocker,
    tiny_sd_path: Path,
    media_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Workers]:
    app.control.purge()  # leftovers of an interrupted run would point at rows that are gone
    workers = Workers(worker_environment(media_root), tmp_path_factory.mktemp("workers"))
    try:
        workers.start()
        yield workers
    finally:
        workers.stop()


@pytest.fixture(autouse=True)
def workers_idle_before_the_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test's leftover work stops before its database is flushed: the session's workers
    outlive every test, and one still rendering (or embedding) held rows the flush wanted, which
    deadlocked it on a busy machine and left the next test's user behind. That holds for a
    test that does not ask for the workers too, once they run: they drain its embedding
    backlog and draw its previews (a CI run: test_screens' flush deadlocked with the cpu
    worker writing a record it had just made)."""
    marker = request.node.get_closest_marker("django_db")
    flushed = marker is not None and bool(marker.kwargs.get("transaction"))
    if "worker_process" not in request.fixturenames and not (Workers.running and flushed):
        yield
        return
    # Set up the database first, so that it is torn down (flushed) after this fixture.
    request.getfixturevalue("_django_db_helper")
    yield
    from generator.models import RenderJob

    unfinished = [RenderJob.Status.QUEUED, RenderJob.Status.RUNNING]
    RenderJob.objects.filter(status__in=unfinished).update(
        status=RenderJob.Status.CANCELLED, claim_token="", lease_expires_at=None
    )
    app.control.purge()

    def idle() -> bool:
        busy = app.control.inspect(timeout=1).active() or {}
        return not any(busy.values())

    wait_for(idle, timeout=120, interval=0.5)


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path, *, name: str) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{log_path.read_text()[-4000:]}")
        replies = app.control.ping(timeout=0.5) or []
        if any(name in hostname for reply in replies for hostname in reply):
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


# --- the browser (Debian chromium via Playwright) ------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls in these tests are
    # ordinary blocking calls, so tell Django they are safe here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# SEEDBANK_SHOTS=<folder> keeps the browser tests' screenshots for people to look at.
SHOTS = os.environ.get("SEEDBANK_SHOTS")


def shot(page: Page, name: str) -> None:
    """A full-page screenshot into SEEDBANK_SHOTS, when it is set."""
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def serious_violations(page: Page) -> list[str]:
    """The ids of axe-core's serious and critical findings on the page."""
    violations = Axe().run(page).response["violations"]
    return [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
