import math

import numpy as np

from engine import verdicts


def test_equal_pixels() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    assert verdicts.pixel_difference(a, a.copy()) == (0, math.inf)
    assert verdicts.verdict(original_sha256="x", candidate_sha256="x", max_abs_diff=0) == (
        verdicts.BIT_IDENTICAL
    )


def test_one_step_is_visually_identical_two_differs() -> None:
    a = np.full((4, 4, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0, 0] = 101
    max_abs, psnr = verdicts.pixel_difference(a, b)
    assert max_abs == 1 and psnr > 60
    assert verdicts.verdict(original_sha256="x", candidate_sha256="y", max_abs_diff=1) == (
        verdicts.VISUALLY_IDENTICAL
    )
    b[1, 1, 1] = 98
    assert verdicts.pixel_difference(a, b)[0] == 2
    assert verdicts.verdict(original_sha256="x", candidate_sha256="y", max_abs_diff=2) == (
        verdicts.DIFFERS
    )


def test_shape_mismatch_differs() -> None:
    assert verdicts.pixel_difference(np.zeros((2, 2, 3)), np.zeros((4, 4, 3)))[0] == 255


def test_environment_diff_names_nested_keys() -> None:
    before = {
        "torch_threads": 1,
        "batch_size": 4,
        "scheduler_config": {"timestep_spacing": "leading"},
    }
    after = {
        "torch_threads": 2,
        "batch_size": 4,
        "scheduler_config": {"timestep_spacing": "trailing"},
    }
    assert verdicts.environment_diff(before, after) == {
        "scheduler_config.timestep_spacing": ["leading", "trailing"],
        "torch_threads": [1, 2],
    }
