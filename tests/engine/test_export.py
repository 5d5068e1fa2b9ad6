"""Exported recipes: standalone scripts that re-render a record bit-for-bit, without Seedbank."""

from __future__ import annotations

import ast
import json
import os
import runpy
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from engine.export import EXPORT_FORMAT, EXPORT_VERSION, export_document, export_script
from engine.pipeline import configure_determinism, pixel_sha256, render
from engine.schedulers import SCHEDULERS
from engine.weights import weights_digest
from tests.engine.support import render_request

STEPS = 8  # enough for every scheduler's warm-up; keeps each render near 0.2 s
# One thread, unlike conftest's RENDER_THREADS: this machine's default is 2, so an exported
# script that forgot to pin the recorded thread count would run with a different one.
EXPORT_THREADS = 1
# Quotes, backslashes, a newline, Chinese and the script template's own placeholders: everything
# that could break the exported script's literals.
AWKWARD_PROMPT = 'a "quoted" lighthouse \\ at dusk\n""" \'\'\' 灯塔 @@DOCUMENT@@, oil painting'
STANDALONE_MODULES = {
    "numpy",
    "PIL",
    "torch",
    "diffusers",
    "transformers",
    "torchvision",
    "safetensors",
    "peft",  # LoRA layers of a text encoder (engine.render_steps injects them with peft)
}
SUBPROCESS_TIMEOUT_S = 300


@dataclass(frozen=True)
class Case:
    scheduler: str
    seeds: tuple[int, ...]
    pick: int  # the record's batch_index
    prompt: str = "a lighthouse at dusk, oil painting"


CASES = {
    "single-pndm": Case("PNDM", (1234,), 0),
    "batch-ddim-index-2": Case("DDIM", (40, 41, 42, 43), 2, prompt=AWKWARD_PROMPT),
    # Ancestral samplers draw fresh noise from the generators at every step, per image.
    **({"batch-euler-a": Case("Euler a", (900, 901), 1)} if "Euler a" in SCHEDULERS else {}),
}


def _synthetic_document(**changes: Any) -> dict[str, Any]:
    """A document from made-up values, for tests that never render."""
    arguments: dict[str, Any] = {
        "prompt": AWKWARD_PROMPT,
        "negative_prompt": "blurry",
        "seed": 102,
        "steps": 20,
        "guidance": 7.5,
        "width": 64,
        "height": 64,
        "precision": "fp32",
        "scheduler": "DDIM",
        "batch_size": 4,
        "batch_index": 2,
        "model_name": "tiny-sd@seed0",
        "model_digest": "d" * 64,
        "model_path": "/models/tiny-sd",
        "pixel_sha256": "a" * 64,
        "environment": {
            "torch": "2.13.0",
            "device": "cpu",
            "torch_threads": 2,
            "seed": 102,
            "batch_index": 2,
            "batch_size": 4,
            "scheduler_config": {"_class_name": "DDIMScheduler", "timestep_spacing": "leading"},
        },
    }
    arguments.update(changes)
    top_level = {"model_path", "pixel_sha256", "environment"}
    recipe = {key: value for key, value in arguments.items() if key not in top_level}
    recipe["model"] = recipe.pop("model_name")
    return export_document(
        recipe=recipe, **{key: value for key, value in arguments.items() if key in top_level}
    )


def test_document_holds_the_recipe_the_whole_batch_and_the_environment() -> None:
    document = _synthetic_document()
    assert document["format"] == EXPORT_FORMAT and document["version"] == EXPORT_VERSION
    assert document["seeds"] == [100, 101, 102, 103]
    assert document["seeds"][document["batch_index"]] == document["seed"]
    assert document["scheduler_config"] == {
        "_class_name": "DDIMScheduler",
        "timestep_spacing": "leading",
    }
    assert document["torch_threads"] == 2
    assert document["expected_pixel_sha256"] == "a" * 64
    assert document["model"] == {
        "name": "tiny-sd@seed0",
        "digest": "d" * 64,
        "path": "/models/tiny-sd",
    }
    assert document["environment"]["torch"] == "2.13.0"
    assert document["prompt"] == AWKWARD_PROMPT
    assert json.loads(json.dumps(document)) == document


@pytest.mark.parametrize(
    "changes",
    [
        {"batch_index": 4},  # outside a batch of 4
        {"seed": 1, "batch_index": 2},  # the batch would start at seed -1
        {"pixel_sha256": "not-a-digest"},
        {"environment": {"torch_threads": 2}},  # no scheduler config
        {"environment": {"scheduler_config": {"_class_name": "DDIMScheduler"}}},  # no threads
        # The environment of another image of the batch: the script would render that one.
        {
            "environment": {
                "torch_threads": 2,
                "batch_index": 1,
                "scheduler_config": {"_class_name": "DDIMScheduler"},
            }
        },
    ],
)
def test_document_refuses_records_it_cannot_reproduce(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _synthetic_document(**changes)


def test_document_refuses_values_json_cannot_hold() -> None:
    environment = _synthetic_document()["environment"]
    with pytest.raises(TypeError):
        _synthetic_document(environment={**environment, "when": object()})


def test_script_imports_only_stdlib_and_the_ml_stack() -> None:
    tree = ast.parse(export_script(_synthetic_document()))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import needs a package around the script"
            assert node.module is not None
            imported.add(node.module.split(".")[0])
    assert {"diffusers", "torch"} <= imported
    assert imported - STANDALONE_MODULES <= set(sys.stdlib_module_names), imported
    assert not {"generator", "seedbank", "gallery", "search", "config"} & imported


def test_script_embeds_the_document_and_states_the_recipe_in_words() -> None:
    document = _synthetic_document()
    source = export_script(document)
    tree = ast.parse(source)  # the awkward prompt did not break any literal
    [embedded] = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["DOCUMENT"]
    ]
    assert isinstance(embedded, ast.Call) and isinstance(embedded.args[0], ast.Constant)
    literal = embedded.args[0].value
    assert isinstance(literal, str)
    assert json.loads(literal) == document
    header = ast.get_docstring(tree)
    assert header is not None
    for words in (
        json.dumps(AWKWARD_PROMPT, ensure_ascii=False),
        "image 3 of a batch of 4",
        "seeds 100, 101, 102, 103",
        '"DDIMScheduler"',
        "--model PATH",
        "a" * 64,
    ):
        assert words in header, words
    assert source.count("@@DOCUMENT@@") == 2  # the prompt, in the header and in the document


def test_script_refuses_foreign_documents() -> None:
    with pytest.raises(ValueError):
        export_script({**_synthetic_document(), "version": EXPORT_VERSION + 1})


# --- real renders, re-rendered by the exported scripts ------------------------------------


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    # Other test modules expect the session's thread count: put it back afterwards.
    previous = torch.get_num_threads()
    configure_determinism(EXPORT_THREADS)
    yield
    torch.set_num_threads(previous)


def _record(model_dir: Path, case: Case, digest: str) -> dict[str, Any]:
    """Render a case in-process, as a worker would, and export its picked image."""
    request = render_request(
        model_path=str(model_dir),
        prompt=case.prompt,
        negative_prompt="blurry",
        seeds=case.seeds,
        scheduler=case.scheduler,
        steps=STEPS,
        guidance=7.5,
        width=64,
        height=64,
    )
    image = render(request)[case.pick]
    recipe = {
        "model": "tiny-sd@seed0",
        "model_digest": digest,
        **replace(request.recipe, seed=image.seed).portable(),
        "batch_size": len(request.seeds),
        "batch_index": image.batch_index,
    }
    return export_document(
        recipe=recipe,
        model_path=str(model_dir),
        pixel_sha256=image.pixel_sha256,
        environment=image.environment,
    )


@dataclass(frozen=True)
class Run:
    document: dict[str, Any]
    out: Path
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def script_runs(
    sd_model_dir: Path, one_thread: None, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Run]:
    """Each case's exported script, run in its own fresh process, all processes at once.

    Imports cost 6-8 s per process; running them side by side helps where cores are free. The
    processes cannot import Seedbank: cwd is a temp dir and PYTHONPATH is empty.
    """
    folder = tmp_path_factory.mktemp("exported")
    env = {**os.environ, "PYTHONPATH": ""}
    probe = subprocess.run(
        [sys.executable, "-c", "import generator"], cwd=folder, env=env, capture_output=True
    )
    assert probe.returncode != 0, "the scripts' processes could import Seedbank after all"

    digest = weights_digest(sd_model_dir)
    documents = {name: _record(sd_model_dir, case, digest) for name, case in CASES.items()}
    started = time.perf_counter()
    processes = {}
    for name, document in documents.items():
        script = folder / f"{name}.py"
        script.write_text(export_script(document), encoding="utf-8")
        out = folder / f"{name}.png"
        command = [sys.executable, str(script), "--model", str(sd_model_dir), "--out", str(out)]
        processes[name] = (
            document,
            out,
            subprocess.Popen(
                command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            ),
        )
    runs = {}
    try:
        for name, (document, out, process) in processes.items():
            stdout, stderr = process.communicate(timeout=SUBPROCESS_TIMEOUT_S)
            runs[name] = Run(
                document, out, process.returncode, stdout.decode(), stderr.decode(errors="replace")
            )
    finally:
        for _, _, process in processes.values():  # after a timeout, leave no renders running
            if process.poll() is None:
                process.kill()
                process.wait()
    print(f"{len(runs)} exported scripts ran in {time.perf_counter() - started:.1f} s")
    return runs


def _printed_sha(stdout: str) -> str:
    [line] = [line for line in stdout.splitlines() if line.startswith("sha256 ")]
    return line.removeprefix("sha256 ")


@pytest.mark.parametrize("name", sorted(CASES))
def test_exported_script_reproduces_the_record_in_a_fresh_process(
    script_runs: dict[str, Run], name: str
) -> None:
    run = script_runs[name]
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    expected = run.document["expected_pixel_sha256"]
    assert _printed_sha(run.stdout) == expected
    with Image.open(run.out) as written:
        assert written.format == "PNG"
        assert pixel_sha256(written) == expected


def test_a_mismatch_prints_both_hashes_and_exits_1(
    sd_model_dir: Path, one_thread: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process through the script's main(): a fresh process would only add 8 s of imports,
    # and the exit-0 cases above already prove `sys.exit(main())` carries the status out.
    document = _record(sd_model_dir, CASES["single-pndm"], digest="0" * 64)
    real = document["expected_pixel_sha256"]
    wrong = {**document, "expected_pixel_sha256": "0" * 64}
    main = _load_script(export_script(wrong), tmp_path)["main"]
    out = tmp_path / "image.png"
    # --model: the record's digest is made up, so the folder cannot be found by digest.
    assert main(["--out", str(out), "--model", str(sd_model_dir)]) == 1
    printed = capsys.readouterr().out
    assert _printed_sha(printed) == real
    assert f"expected {'0' * 64}" in printed
    with Image.open(out) as written:
        assert pixel_sha256(written) == real


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_catalogued_scheduler_is_rebuilt_from_its_recorded_config(
    sd_model_dir: Path, one_thread: None, tmp_path: Path, name: str
) -> None:
    # In-process (the imports are paid already): the exported script's own render function,
    # on a batch of 2 so per-image generators matter, for every scheduler in the catalogue.
    document = _record(sd_model_dir, Case(name, (5, 6), 1), digest="0" * 64)
    namespace = _load_script(export_script(document), tmp_path)
    image = namespace["render"](namespace["DOCUMENT"], str(sd_model_dir), "cpu")
    assert namespace["pixel_sha256"](image) == document["expected_pixel_sha256"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    document = _synthetic_document(model_path=str(tmp_path / "no-model-here"))
    main = _load_script(export_script(document), tmp_path)["main"]
    for argv in (["--device", "tpu"], ["--unknown"], []):  # [] -> the recorded path is missing
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2, argv


def _load_script(source: str, folder: Path) -> dict[str, Any]:
    """Execute an exported script as a module (not as __main__), to call its functions."""
    path = folder / "exported_recipe_under_test.py"
    path.write_text(source, encoding="utf-8")
    return runpy.run_path(str(path), run_name="exported_recipe")
