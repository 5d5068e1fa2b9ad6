"""How a reproduction compares with its original (Django-free).

bit-identical: the decoded pixels hash the same. visually identical: no channel of any pixel
differs by more than VISUAL_MAX_ABS_DIFF (1/255, one step of 8-bit colour). Anything else differs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

VISUAL_MAX_ABS_DIFF = 1

BIT_IDENTICAL = "bit-identical"
VISUALLY_IDENTICAL = "visually-identical"
DIFFERS = "differs"


def pixel_difference(original: np.ndarray, candidate: np.ndarray) -> tuple[int, float]:
    """(max absolute difference in 0..255, PSNR in dB; inf when equal). Shapes must match."""
    if original.shape != candidate.shape:
        return 255, 0.0
    delta = original.astype(np.int16) - candidate.astype(np.int16)
    max_abs = int(np.abs(delta).max()) if delta.size else 0
    mse = float(np.mean(delta.astype(np.float64) ** 2)) if delta.size else 0.0
    psnr = math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
    return max_abs, psnr


def verdict(*, original_sha256: str, candidate_sha256: str, max_abs_diff: int) -> str:
    if original_sha256 == candidate_sha256:
        return BIT_IDENTICAL
    if max_abs_diff <= VISUAL_MAX_ABS_DIFF:
        return VISUALLY_IDENTICAL
    return DIFFERS


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def environment_diff(original: dict[str, Any], candidate: dict[str, Any]) -> dict[str, list[Any]]:
    """Dotted key -> [original, candidate] for every value that changed between two renders."""
    before, after = _flatten(original), _flatten(candidate)
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    }
