"""The engine works with Django made unimportable: workers and scripts need no settings."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import engine

REPO_ROOT = Path(__file__).resolve().parents[2]
# Every module, subpackages included (engine.imports, engine.provenance, engine.training and
# its __main__, which trains only when run as a script).
ENGINE_MODULES = sorted(
    info.name for info in pkgutil.walk_packages(engine.__path__, prefix="engine.")
)

# A finder that refuses Django (and every Seedbank app) before the real import system looks.
_BLOCKER = """
import importlib.abc, json, sys
BLOCKED = ("django", "celery", "ninja", "config", "gallery", "generator", "search")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked: the engine must not need it")
sys.meta_path.insert(0, Block())
"""


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKER + script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_blocker_blocks() -> None:
    result = _run("import django")
    assert result.returncode != 0 and "blocked" in result.stderr


def test_every_engine_module_imports_without_django() -> None:
    subpackages = {name.split(".")[1] for name in ENGINE_MODULES if name.count(".") == 2}
    assert {"imports", "provenance", "training"} <= subpackages
    assert len(ENGINE_MODULES) >= 50
    script = f"""
import importlib
for name in {ENGINE_MODULES!r}:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "django")))
"""
    result = _run(script)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_a_render_recipe_export_round_trip_needs_no_settings(sd_model_dir: Path) -> None:
    """What a worker or a notebook does: recipe -> pixels -> PNG chunks -> export document."""
    script = f"""
from engine.export import export_document
from engine.infotext import read_png_chunks, recipe_from_json
from engine.pipeline import RenderRequest, configure_determinism, render
from engine.png_metadata import png_text_for
from engine.recipe import Recipe
from engine.weights import weights_digest

configure_determinism(1)
recipe = Recipe(prompt="a red circle", seed=5, steps=4)
portable = {{"model": "tiny-sd", "model_digest": weights_digest({str(sd_model_dir)!r}),
            **recipe.portable(), "batch_size": 1, "batch_index": 0}}
(image,) = render(RenderRequest(model_path={str(sd_model_dir)!r}, recipe=recipe, seeds=(5,)),
                  png_text=png_text_for(portable))
written = recipe_from_json(read_png_chunks(image.png)["seedbank"])
document = export_document(recipe=portable, model_path={str(sd_model_dir)!r},
                           pixel_sha256=image.pixel_sha256, environment=image.environment)
print(json.dumps([written["prompt"], document["seeds"], document["expected_pixel_sha256"]]))
"""
    result = _run(script)
    assert result.returncode == 0, result.stderr[-3000:]
    prompt, seeds, sha = json.loads(result.stdout.strip().splitlines()[-1])
    assert (prompt, seeds, len(sha)) == ("a red circle", [5], 64)
