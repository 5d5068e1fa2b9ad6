"""`make run`'s terminal stays readable: the children's output (Celery banners, warnings,
tracebacks) goes to var/log/<name>.log, and the demo's progress bar says what it waits for."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from engine.recipe import Recipe
from gallery.management.supervisor import Supervisor, log_file
from generator.management.progress import jobs_waiting_for
from generator.models import RenderJob
from generator.selectors.jobs import JobsProgress, jobs_progress
from generator.services.render_jobs import render_job_claim, render_job_create

TALKER = [
    sys.executable,
    "-c",
    "import sys; print('a banner', flush=True); print('a warning', file=sys.stderr, flush=True);"
    " raise SystemExit(3)",
]


def test_children_write_to_their_log_files_not_to_the_terminal(tmp_path: Path, capfd) -> None:
    said: list[str] = []
    children = Supervisor({"gpu worker": TALKER}, env={}, say=said.append, log_dir=tmp_path / "log")
    children.start()
    try:
        child = children.children[0]
        assert child.process is not None
        child.process.wait(timeout=30)
        children.check()  # exited: started again (its log appended to)
        assert child.process is not None
        child.process.wait(timeout=30)
        time.sleep(0.1)
    finally:
        children.stop()
    path = log_file(tmp_path / "log", "gpu worker")
    assert path == tmp_path / "log" / "gpu-worker.log"
    lines = path.read_text().splitlines()
    assert lines.count("a banner") == 2 and lines.count("a warning") == 2
    assert sum(line.startswith("--- gpu worker started") for line in lines) == 2
    out, err = capfd.readouterr()
    assert "a banner" not in out + err and "a warning" not in out + err
    assert f"gpu worker: its output is in {path}" in said

    # A new supervisor (the next `make run`) starts the log afresh.
    again = Supervisor({"gpu worker": TALKER}, env={}, say=said.append, log_dir=tmp_path / "log")
    again.start()
    try:
        assert again.children[0].process is not None
        again.children[0].process.wait(timeout=30)
    finally:
        again.stop()
    assert path.read_text().splitlines().count("a banner") == 1


def test_the_progress_bar_says_what_it_waits_for() -> None:
    def said(finished: int, running: int, step: int = 0, total: int = 0) -> str:
        progress = JobsProgress(finished=finished, running=running, step=step, total=total)
        return jobs_waiting_for(progress, count=40, what="demo")

    assert said(0, 0) == "demo: waiting for the render worker (starting, loading models)"
    assert said(2, 1, 5, 20) == "rendering demo 3/40 (step 5/20)"
    assert said(2, 1) == "rendering demo 3/40"
    assert said(3, 0) == "demo: waiting for the render worker"


@pytest.mark.django_db
def test_jobs_progress_counts_finished_and_running_jobs(user, model_version, sent) -> None:
    recipe = Recipe(model_version_id=model_version.pk, prompt="a koi pond", seed=3, steps=4)
    jobs = [render_job_create(owner=user, recipe=recipe) for _ in range(3)]
    ids = [job.pk for job in jobs]
    assert jobs_progress(ids=ids) == JobsProgress(finished=0, running=0, step=0, total=0)
    render_job_claim(job_id=jobs[1].pk, worker="gpu@a")
    RenderJob.objects.filter(pk=jobs[1].pk).update(progress_step=2, progress_total=4)
    RenderJob.objects.filter(pk=jobs[0].pk).update(status=RenderJob.Status.DONE)
    assert jobs_progress(ids=ids) == JobsProgress(finished=1, running=1, step=2, total=4)
