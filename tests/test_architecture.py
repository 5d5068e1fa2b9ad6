"""The architecture rules, checked on the source: the ORM only in services and selectors, no
function-local import except of heavy ML modules (with its reason), and the recipe's field
list written once (engine/recipe.py). Import direction itself is import-linter's (make lint)."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.recipe import recipe_fields
from generator.models import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "engine", "generator", "search", "archive", "gallery")
RECIPE_NAMES = {f.name for f in recipe_fields()}
# Torch, diffusers and open_clip take seconds to import; web processes and most commands never
# need them, so these may be imported inside the function that uses them.
HEAVY_MODULES = {
    "engine.pipeline",
    "engine.embedder",
    "engine.tiny_models",
    "engine.single_file",
    "engine.blends",
}


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _relative(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def _reads_or_writes(path: Path) -> bool:
    parts = {*path.parts, path.stem}
    return bool(parts & {"services", "selectors", "models"})


def test_the_orm_is_used_only_in_services_selectors_and_models() -> None:
    offenders = [
        f"{_relative(path)}:{node.lineno}"
        for path, tree in _sources()
        if not _reads_or_writes(path)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "objects"
    ]
    assert offenders == []


def _local_imports(tree: ast.Module) -> Iterator[tuple[ast.FunctionDef, ast.stmt]]:
    """Imports of Seedbank's own modules inside functions (third-party ones are the libraries'
    business: optional or slow dependencies such as pgserver or jieba load where used)."""
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom) and (
                    {name.split(".")[0] for name in _imported(node)} & set(PACKAGES)
                ):
                    yield function, node  # type: ignore[misc]


def _imported(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    assert isinstance(node, ast.ImportFrom)
    return {node.module or ""} | {f"{node.module}.{alias.name}" for alias in node.names}


def test_function_local_imports_are_heavy_modules_with_a_reason() -> None:
    offenders = []
    for path, tree in _sources():
        lines = path.read_text(encoding="utf-8").splitlines()
        for function, node in _local_imports(tree):
            # AppConfig.ready and gunicorn's worker hook run before/after Django is set up.
            if function.name in {"ready", "post_worker_init"}:
                continue
            reason = lines[node.lineno - 2].strip().startswith("#")
            if not (_imported(node) & HEAVY_MODULES) or not reason:
                offenders.append(f"{_relative(path)}:{node.lineno}")
    assert offenders == []


def _names(nodes: list[ast.expr | None]) -> set[str]:
    return {
        node.value
        for node in nodes
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    } & RECIPE_NAMES


def _field_lists(tree: ast.Module) -> Iterator[tuple[int, set[str]]]:
    """Places that spell out several recipe fields: literals of their names, dict keys, keyword
    arguments, parameter lists and class bodies."""
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            yield node.lineno, _names(list(node.elts))
        elif isinstance(node, ast.Dict):
            yield node.lineno, _names(node.keys)
        elif isinstance(node, ast.Call):
            yield node.lineno, {k.arg for k in node.keywords if k.arg} & RECIPE_NAMES
        elif isinstance(node, ast.FunctionDef):
            arguments = [*node.args.args, *node.args.kwonlyargs]
            yield node.lineno, {a.arg for a in arguments} & RECIPE_NAMES
        elif isinstance(node, ast.ClassDef):
            assigned = {
                target.id
                for statement in node.body
                for target in (
                    statement.targets if isinstance(statement, ast.Assign) else
                    [statement.target] if isinstance(statement, ast.AnnAssign) else []
                )
                if isinstance(target, ast.Name)
            }  # fmt: skip
            yield node.lineno, assigned & {name.removesuffix("_id") for name in RECIPE_NAMES}


# Where several recipe field names legitimately appear together, and why.
FIELD_LIST_EXCEPTIONS = {
    # The type itself: the one list.
    "engine/recipe.py",
    # The database columns (checked against the type below).
    "generator/models/records.py",
    # A1111's infotext is a foreign format with its own keys (Sampler, CFG scale, Size).
    "engine/infotext.py",
    # The worker hands the recipe to engine.render_steps.generate, which is standalone (exported
    # scripts carry it) and so takes plain keywords, not a Recipe; it passes them on inside.
    "engine/pipeline.py",
    "engine/render_steps.py",
    # Each reader maps one tool's published format onto a SourceRecipe, key by key.
    *(
        f"engine/imports/{name}.py"
        for name in ("a1111", "comfyui", "image_files", "source", "tables")
    ),
}
# A copy of the list names most of it; a handful of shared names (search filters on width,
# height and seed; Lexica's response) is another concept that happens to overlap.
MIN_FIELDS = 8


def test_the_recipe_field_list_is_written_once() -> None:
    offenders = [
        f"{_relative(path)}:{line} {sorted(names)}"
        for path, tree in _sources()
        if _relative(path) not in FIELD_LIST_EXCEPTIONS
        for line, names in _field_lists(tree)
        if len(names) >= MIN_FIELDS
    ]
    assert offenders == []


@pytest.mark.parametrize("recipe_field", recipe_fields(), ids=lambda f: f.name)
def test_every_recipe_field_is_a_column_of_the_record(recipe_field: dataclasses.Field) -> None:
    columns = {field.attname for field in Image._meta.concrete_fields}
    assert recipe_field.name in columns


# What a web process loads as gunicorn starts it (config/gunicorn.py preloads the app, and the
# URLconf imports every view): settings that need no server, since nothing here connects.
_WEB_PROCESS = """
import json, sys
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns
import config.wsgi
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
                        {"diffusers", "transformers"} or m in {"engine.pipeline",
                        "generator.tasks", "generator.services.rendering"})))
"""


def test_web_processes_never_load_diffusers_or_the_render_pipeline() -> None:
    """ARCHITECTURE.md: renders go by task name, so the web never loads what renders need
    (torch it does import, and open_clip for search; see there)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        "CELERY_BROKER_URL": "memory://",
    }
    result = subprocess.run(
        [sys.executable, "-c", _WEB_PROCESS],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
