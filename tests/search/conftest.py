"""Fixtures for the Django-free embedder tests: a tiny CLIP built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def clip_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from generator.tiny_models import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip", seed=0)
