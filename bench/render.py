"""Render benchmark for the tiny offline pipeline (Django-free).

Baseline: one 64×64 image, 20 steps, PNDM, measured in this same run. Every other case prints its
per-image time as a ratio to that baseline plus absolute figures (median of N repeats), because
this machine is noisy and only same-run ratios compare across days.

    .venv/bin/python bench/render.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import pipeline
from engine.recipe import Recipe
from engine.tiny_models import build_tiny_sd

CASES = [
    ("baseline: PNDM, batch 1, 20 steps", {"scheduler": "PNDM", "seeds": (1,)}),
    ("DDIM, batch 1", {"scheduler": "DDIM", "seeds": (1,)}),
    ("K-LMS, batch 1", {"scheduler": "K-LMS", "seeds": (1,)}),
    ("Euler a, batch 1", {"scheduler": "Euler a", "seeds": (1,)}),
    ("PNDM, batch 4 (per image)", {"scheduler": "PNDM", "seeds": (1, 2, 3, 4)}),
    ("PNDM, batch 8 (per image)", {"scheduler": "PNDM", "seeds": tuple(range(1, 9))}),
    ("PNDM, 128×128, batch 1", {"scheduler": "PNDM", "seeds": (1,), "width": 128, "height": 128}),
]


def per_image_seconds(request: pipeline.RenderRequest, repeats: int) -> list[float]:
    pipeline.render(request)  # warm-up: first call pays for lazy init
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        pipeline.render(request)
        times.append((time.perf_counter() - started) / len(request.seeds))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    pipeline.configure_determinism(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_sd(Path(tmp) / "tiny-sd", seed=0)
        started = time.perf_counter()
        pipeline.load(str(model))
        load_s = time.perf_counter() - started
        print(
            f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
            f"threads {args.threads}, device {pipeline.device_name()}"
        )
        print(f"pipeline load: {load_s:.2f} s\n")
        print(f"{'case':38} {'ratio':>6} {'median ms/img':>14} {'min':>8} {'max':>8}")
        baseline = None
        for name, fields in CASES:
            recipe = Recipe(
                prompt="a lighthouse at sunset", steps=20, guidance=7.5,
                width=fields.get("width", 64), height=fields.get("height", 64),  # type: ignore[arg-type]
                scheduler=fields["scheduler"],  # type: ignore[arg-type]
            )  # fmt: skip
            request = pipeline.RenderRequest(
                model_path=str(model),
                recipe=recipe,
                seeds=fields["seeds"],  # type: ignore[arg-type]
            )
            times = per_image_seconds(request, args.repeats)
            median = statistics.median(times)
            baseline = baseline or median
            print(f"{name:38} {median / baseline:6.2f} {median * 1e3:14.1f} "
                  f"{min(times) * 1e3:8.1f} {max(times) * 1e3:8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
