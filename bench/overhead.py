"""What Seedbank costs on top of the GPU: submit → stored record against a bare diffusers call.

    .venv/bin/python bench/overhead.py [--pairs 10]

Starts its own embedded Postgres + Redis under var/bench and a real render worker process (the
one `make run` starts), then for each case runs pairs, interleaved and alternating in order:
- bare: the loaded StableDiffusionPipeline called directly in this process on the same recipe
  (same seed, scheduler, steps, size, torch threads), no callback, no PNG;
- through Seedbank: render_job_create (validation, quota, rows, publish) → broker → worker
  (claim, render with progress, PNG with metadata, store, done).

"Through" is timed from the job row's created_at to its finished_at (both written by the
processes involved, same clock), so how often this script polls does not matter. Prints medians,
the ratio, the fixed cost per job (median of per-pair differences) and its parts, then the first
job after a worker restart against a warm one. Embedding is not on this path: it runs on the
cpu queue after the record is stored (no cpu worker is started here).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SEEDBANK_VAR_DIR", str(ROOT / "var" / "bench"))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from config.celery import app  # noqa: E402
from engine import pipeline  # noqa: E402
from engine.recipe import Recipe  # noqa: E402
from gallery.management.commands.runstack import child_environment, worker_command  # noqa: E402
from generator.models import RenderJob  # noqa: E402
from generator.selectors.recipes import model_version_default  # noqa: E402
from generator.services.render_jobs import render_job_create  # noqa: E402

CASES = [
    ("64×64, 20 steps", {"width": 64, "height": 64, "steps": 20}),
    ("256×256, 20 steps (bare ≥ 1 s here)", {"width": 256, "height": 256, "steps": 20}),
]


@dataclass
class Through:
    total: float  # created_at → finished_at
    submit: float  # render_job_create in this process, publish included
    pickup: float  # created_at → claimed (rest of submit, publish, broker, worker, claim)
    render: float  # the worker's pipeline call: render, progress writes, PNG encoding
    store: float  # claim → render start (rows, model check) + render end → stored (files, rows)


def start_worker(log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        worker = subprocess.Popen(
            worker_command("bench"), env=child_environment(), stdout=handle,
            stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"worker exited:\n{log.read_text()[-3000:]}")
        if app.control.ping(timeout=0.5):
            return worker
    raise SystemExit("worker did not start")


def bare(pipe, recipe: Recipe) -> float:  # type: ignore[no-untyped-def]
    import torch

    started = time.perf_counter()
    pipe(
        prompt=recipe.prompt,
        num_inference_steps=recipe.steps,
        guidance_scale=recipe.guidance,
        width=recipe.width,
        height=recipe.height,
        generator=torch.Generator("cpu").manual_seed(recipe.seed or 0),
        output_type="pil",
    )
    return time.perf_counter() - started


def through(owner, recipe: Recipe) -> Through:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    job = render_job_create(owner=owner, recipe=recipe)
    submit = time.perf_counter() - started
    while True:
        time.sleep(0.05)
        job.refresh_from_db()
        if job.is_finished:
            break
    if job.status != RenderJob.Status.DONE:
        raise SystemExit(f"job {job.pk} {job.status}: {job.error}")
    assert job.started_at and job.finished_at and job.render_seconds is not None
    total = (job.finished_at - job.created_at).total_seconds()
    pickup = (job.started_at - job.created_at).total_seconds()
    return Through(
        total=total,
        submit=submit,
        pickup=pickup,
        render=job.render_seconds,
        store=total - pickup - job.render_seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=10)
    args = parser.parse_args()

    call_command("migrate", interactive=False, verbosity=0)
    call_command("build_tiny_models", verbosity=0)
    owner, _ = get_user_model().objects.get_or_create(
        username="bench",
        defaults={"is_staff": True},  # staff: no quota in the way
    )
    model_version = model_version_default()
    assert model_version is not None
    app.control.purge()
    pipeline.configure_determinism(settings.SEEDBANK_TORCH_THREADS)
    pipe = pipeline.load(model_version.path, "fp32")

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "worker.log"
        worker = start_worker(log)
        try:
            print(
                f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
                f"torch threads {settings.SEEDBANK_TORCH_THREADS}, device "
                f"{pipeline.device_name()}; {args.pairs} interleaved pairs per case\n"
            )
            warm_totals: list[float] = []
            for name, size in CASES:
                recipe = Recipe(
                    model_version_id=model_version.pk, prompt="a lighthouse at dusk",
                    scheduler="PNDM", seed=1234, **size,  # type: ignore[arg-type]
                )  # fmt: skip
                bare(pipe, recipe)
                through(owner, recipe)  # warm both sides
                bares: list[float] = []
                throughs: list[Through] = []
                for pair in range(args.pairs):
                    if pair % 2:
                        throughs.append(through(owner, recipe))
                        bares.append(bare(pipe, recipe))
                    else:
                        bares.append(bare(pipe, recipe))
                        throughs.append(through(owner, recipe))
                report(name, bares, throughs)
                if not warm_totals:
                    warm_totals = [t.total for t in throughs]
                    first_recipe = recipe

            # First job after a worker start, against the warm jobs of the first case.
            worker.terminate()
            worker.wait(timeout=60)
            worker = start_worker(log)
            first = through(owner, first_recipe)
            warm = statistics.median(warm_totals)
            print(
                f"first job after a worker start: {first.total * 1e3:.0f} ms "
                f"(warm median {warm * 1e3:.0f} ms): {first.total / warm:.2f}× a warm job"
            )
        finally:
            worker.terminate()
            worker.wait(timeout=60)


def report(name: str, bares: list[float], throughs: list[Through]) -> None:
    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1e3:8.1f}"

    bare_median = statistics.median(bares)
    total_median = statistics.median(t.total for t in throughs)
    fixed = [t.total - b for t, b in zip(throughs, bares, strict=True)]
    print(f"== {name}")
    print(f"   bare diffusers          {ms(bares)} ms")
    print(f"   submit → stored record  {ms([t.total for t in throughs])} ms")
    print(f"   ratio                   {total_median / bare_median:8.3f}×")
    print(f"   fixed cost per job      {ms(fixed)} ms (median of per-pair differences)")
    render_extra = [t.render - b for t, b in zip(throughs, bares, strict=True)]
    pickups = [t.pickup for t in throughs]
    stores = [t.store for t in throughs]
    submits = [t.submit for t in throughs]
    parts = [
        ("job row created → claimed by the worker (publish, broker, claim)", pickups),
        ("render call over bare (progress writes, PNG encoding, environment)", render_extra),
        ("claim → render start, render end → stored (rows, model check, files)", stores),
        ("(submit in the web process, overlapping the first part)", submits),
    ]
    for label, values in parts:
        print(f"     {label:72} {ms(values)} ms")
    print()


if __name__ == "__main__":
    main()
