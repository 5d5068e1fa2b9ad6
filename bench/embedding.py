"""Embedding throughput through the cpu worker against bare open_clip batches.

    .venv/bin/python bench/embedding.py [--images 512] [--rounds 3]

Starts its own embedded Postgres + Redis under var/bench and a real cpu worker process (the one
`make run` starts). N stored records (64×64 PNGs) finish one by one, as N one-image jobs would:
each joins the embedding backlog and sends a drain task. "Through the worker" is N divided by
the time from the first of them to the last vector stored. Baselines, measured in the same run,
in this process, on the same files and model, in batches of 64:
- bare, from files: read + decode + preprocess + forward (what any script over the archive does);
- bare, forward only: the images already decoded in memory;
- bare from files plus the same bulk INSERT into the HNSW-indexed table (what storing costs).
Rounds alternate through / bare so both see the same machine noise.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SEEDBANK_VAR_DIR", str(ROOT / "var" / "bench"))

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from django.core.files.storage import default_storage  # noqa: E402
from django.core.management import call_command  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

from config.celery import app  # noqa: E402
from engine import embedder  # noqa: E402
from gallery.management.commands.runstack import child_environment, cpu_worker_command  # noqa: E402
from generator.models import Image  # noqa: E402
from generator.selectors.recipes import model_version_default  # noqa: E402
from search.models import ImageEmbedding, PendingEmbedding  # noqa: E402
from search.selectors import active_embedding_model  # noqa: E402
from search.services import embedding_model_ensure_registered, images_embedding_enqueue  # noqa: E402

BATCH = 64
PROMPT = "bench: embedding throughput"


def records(count: int) -> list[Image]:
    """`count` ready records with distinct noise PNGs (made once, reused by later runs)."""
    existing = list(Image.objects.filter(prompt=PROMPT).order_by("pk")[:count])
    model_version = model_version_default()
    assert model_version is not None
    rng = np.random.default_rng(0)
    for _ in range(count - len(existing)):
        image = Image.objects.create(
            model_version=model_version, model_name=str(model_version),
            model_digest=model_version.weights_digest, prompt=PROMPT, seed=0,
            scheduler="PNDM", steps=1, guidance=7.5, width=64, height=64,
            status=Image.Status.READY,
        )  # fmt: skip
        buffer = io.BytesIO()
        PILImage.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
        image.image_file.save(f"bench-{image.pk}.png", ContentFile(buffer.getvalue()))
        existing.append(image)
    return existing


def through_worker(images: list[Image], *, backlog_first: bool) -> float:
    """Images/s through the cpu worker. backlog_first: the jobs finish while the worker's
    consumer is paused, then it drains them (the worker's own rate); otherwise they finish
    while it runs (end to end, this process publishing N separate jobs included)."""
    ids = [image.pk for image in images]
    ImageEmbedding.objects.filter(image_id__in=ids).delete()
    if backlog_first:
        app.control.cancel_consumer("cpu", reply=True)
    started = time.perf_counter()
    for image_id in ids:  # each as its own finished job
        images_embedding_enqueue(image_ids=[image_id])
    if backlog_first:
        started = time.perf_counter()
        app.control.add_consumer("cpu", reply=True)
    while ImageEmbedding.objects.filter(image_id__in=ids).count() < len(ids):
        time.sleep(0.02)
    return len(ids) / (time.perf_counter() - started)


def bare_from_files(path: str, images: list[Image]) -> float:
    started = time.perf_counter()
    for start in range(0, len(images), BATCH):
        pictures = []
        for image in images[start : start + BATCH]:
            with default_storage.open(image.image_file.name, "rb") as handle:
                with PILImage.open(handle) as decoded:
                    pictures.append(decoded.convert("RGB"))
        embedder.embed_images(path, pictures)
    return len(images) / (time.perf_counter() - started)


def bare_with_insert(model, images: list[Image]) -> float:  # type: ignore[no-untyped-def]
    """bare_from_files plus the same bulk insert into the HNSW-indexed table the worker does."""
    ImageEmbedding.objects.filter(image_id__in=[image.pk for image in images]).delete()
    started = time.perf_counter()
    for start in range(0, len(images), BATCH):
        batch = images[start : start + BATCH]
        pictures = []
        for image in batch:
            with default_storage.open(image.image_file.name, "rb") as handle:
                with PILImage.open(handle) as decoded:
                    pictures.append(decoded.convert("RGB"))
        vectors = embedder.embed_images(model.path, pictures)
        ImageEmbedding.objects.bulk_create(
            ImageEmbedding(image_id=image.pk, model_name=model.name, dim=model.dim, embedding=v)
            for image, v in zip(batch, vectors, strict=True)
        )
    return len(images) / (time.perf_counter() - started)


def bare_forward(path: str, pictures: list[PILImage.Image]) -> float:
    started = time.perf_counter()
    for start in range(0, len(pictures), BATCH):
        embedder.embed_images(path, pictures[start : start + BATCH])
    return len(pictures) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    call_command("migrate", interactive=False, verbosity=0)
    call_command("build_tiny_models", verbosity=0)
    model = embedding_model_ensure_registered(model=active_embedding_model())
    images = records(args.images)
    PendingEmbedding.objects.all().delete()
    app.control.purge()
    pictures = []
    for image in images:
        with default_storage.open(image.image_file.name, "rb") as handle:
            with PILImage.open(handle) as decoded:
                pictures.append(decoded.convert("RGB"))
    embedder.embed_images(model.path, pictures[:BATCH])  # load the model here

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "cpu-worker.log"
        with log.open("wb") as handle:
            worker = subprocess.Popen(
                cpu_worker_command("bench-cpu"), env=child_environment(), stdout=handle,
                stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while not app.control.ping(timeout=0.5):
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"cpu worker did not start:\n{log.read_text()[-3000:]}")
            through_worker(images[:BATCH], backlog_first=False)  # warm: loads CLIP
            through, end_to_end, files, forward, inserted = [], [], [], [], []
            for _ in range(args.rounds):
                through.append(through_worker(images, backlog_first=True))
                end_to_end.append(through_worker(images, backlog_first=False))
                files.append(bare_from_files(model.path, images))
                forward.append(bare_forward(model.path, pictures))
                inserted.append(bare_with_insert(model, images))
        finally:
            worker.terminate()
            worker.wait(timeout=60)

    t, e, f, w, i = (statistics.median(x) for x in (through, end_to_end, files, forward, inserted))
    print(f"{len(images)} records, {args.rounds} rounds, CLIP {model.name}, batches of {BATCH}")
    print(f"  through the cpu worker, queued backlog {t:8.0f} images/s")
    print(f"  end to end, {len(images)} jobs published here  {e:8.0f} images/s")
    print(f"  bare open_clip from files              {f:8.0f} images/s   worker = {t / f:.2f}×")
    print(f"  bare open_clip, decoded in memory      {w:8.0f} images/s   worker = {t / w:.2f}×")
    print(f"  bare from files + the same HNSW insert {i:8.0f} images/s   worker = {t / i:.2f}×")


if __name__ == "__main__":
    main()
