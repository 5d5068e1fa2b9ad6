"""What every training run shares: determinism, the scene pixels, the learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from tqdm import tqdm

from engine.scenes import SIZE, scene_at

# CPU kernels may split sums differently with another thread count, and a different split
# rounds differently: runs are bit-identical only at the same count, so it is fixed.
THREADS = 2


@contextmanager
def deterministic(seed: int, *, threads: int = THREADS) -> Iterator[None]:
    """Seeded, deterministic kernels, `threads` threads; the caller's settings come back after."""
    previous_threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(was_deterministic)


def scene_pixels(
    split: str, count: int, *, start: int = 0, outline: bool = False, desc: str = ""
) -> np.ndarray:
    """(count, 64, 64, 3) uint8: scenes start … start + count - 1 of a split, drawn once."""
    pixels = np.empty((count, SIZE, SIZE, 3), dtype=np.uint8)
    for offset in tqdm(range(count), desc=desc or f"drawing {split} scenes", unit="scene",
                       leave=False, disable=count < 1000):  # fmt: skip
        pixels[offset] = np.asarray(scene_at(split, start + offset).render(outline=outline))
    return pixels


def warmup_cosine(step: int, *, steps: int, warmup: int) -> float:
    """The learning-rate factor at `step`: linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def tokenized(tokenize: Callable[[list[str]], torch.Tensor], captions: list[str]) -> torch.Tensor:
    """Token ids of every caption, each distinct one tokenized once (CLIP's Python BPE takes
    minutes over 100,000 captions, and only about a third of them are distinct)."""
    distinct = sorted(set(captions))
    ids = tokenize(distinct)
    row = {caption: index for index, caption in enumerate(distinct)}
    return ids[torch.tensor([row[caption] for caption in captions])]


def step(loss: torch.Tensor, optimiser: torch.optim.Optimizer, schedule: object) -> None:
    """One optimiser step on `loss`, then the learning-rate schedule's."""
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    schedule.step()  # type: ignore[attr-defined]
