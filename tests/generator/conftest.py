"""Fixtures for the Django-free ML tests: tiny models built once per session into a temp dir.

Names differ from the root conftest's `tiny_sd_path` on purpose: that one lives under Django
settings, and overriding it here would move the Django tests' model too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Both this process and the subprocess in test_pipeline pin this: thread count moves pixels.
RENDER_THREADS = 2


@pytest.fixture(scope="session")
def sd_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from generator.tiny_models import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd", seed=0)


@pytest.fixture(scope="session")
def deterministic() -> dict[str, object]:
    from generator.pipeline import configure_determinism

    return configure_determinism(RENDER_THREADS)
