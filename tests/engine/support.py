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


def run_exported_scripts(
    documents: dict[str, dict[str, Any]],
    *,
    folder: Path,
    files: Path,
    inputs: dict[str, bytes] | None = None,
    timeout: float = 300,
) -> None:
    """Write each document's exported script into its own folder (with the init image and mask
    it names, from `inputs` by role), run them side by side in fresh processes that cannot
    import Seedbank, pointed at `files` only, and assert each prints its record's sha256."""
    import os
    import subprocess
    import sys

    from engine.export import export_script

    env = {**os.environ, "PYTHONPATH": ""}
    processes = {}
    for name, document in documents.items():
        place = folder / name
        place.mkdir()
        (place / "script.py").write_text(export_script(document), encoding="utf-8")
        for role, wanted in (document.get("inputs") or {}).items():
            target = place / wanted["file"]
            target.parent.mkdir(exist_ok=True)
            target.write_bytes((inputs or {})[role])
        command = [sys.executable, "script.py", "--files", str(files), "--out", "out.png"]
        processes[name] = subprocess.Popen(
            command, cwd=place, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    try:
        for name, process in processes.items():
            stdout, stderr = process.communicate(timeout=timeout)
            expected = documents[name]["expected_pixel_sha256"]
            assert process.returncode == 0, (name, stdout.decode(), stderr.decode()[-3000:])
            assert f"sha256 {expected}" in stdout.decode(), name
    finally:
        for process in processes.values():  # after a failure, leave no renders running
            if process.poll() is None:
                process.kill()
                process.wait()
