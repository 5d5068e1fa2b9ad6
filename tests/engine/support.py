"""Fixtures and helpers for tests of the Django-free engine (tests/conftest.py loads them as a
plugin, so the registry tests in tests/generator share the same built models).

Tiny models are built once per session into a temp dir. Names differ from the root conftest's
`tiny_sd_path` on purpose: that one lives under Django settings, and overriding it here would
move the Django tests' model too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.pipeline import RenderRequest
from engine.recipe import Recipe

# Both this process and the subprocess in test_pipeline pin this: thread count moves pixels.
RENDER_THREADS = 2
_REQUEST_FIELDS = {"model_path", "seeds", "batch_index_offset", "init_image", "mask"}


def render_request(**fields: Any) -> RenderRequest:
    """A RenderRequest from flat keywords: the request's own, and the recipe's for the rest."""
    request = {name: value for name, value in fields.items() if name in _REQUEST_FIELDS}
    recipe = {name: value for name, value in fields.items() if name not in _REQUEST_FIELDS}
    request["model_path"] = str(request["model_path"])
    request["seeds"] = tuple(request["seeds"])
    return RenderRequest(recipe=Recipe(**recipe), **request)


def request_fields(request: RenderRequest) -> dict[str, Any]:
    """The flat keywords render_request() takes, to change some and build another."""
    flat = {name: getattr(request, name) for name in _REQUEST_FIELDS}
    return {**flat, **request.recipe.as_dict()}


@pytest.fixture(scope="session")
def sd_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.tiny_models import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd", seed=0)


@pytest.fixture(scope="session")
def clip_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.tiny_models import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip", seed=0)


@pytest.fixture(scope="session")
def deterministic() -> dict[str, object]:
    from engine.pipeline import configure_determinism

    return configure_determinism(RENDER_THREADS)
