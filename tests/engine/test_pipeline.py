"""Rendering with the real tiny pipeline: repeatable pixels, and environments that say how."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine import pipeline
from engine.pipeline import RenderRequest, pixel_sha256, png_bytes, render
from engine.schedulers import SCHEDULERS
from tests.engine.support import RENDER_THREADS, render_request, request_fields

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = 8  # enough for every scheduler's warm-up; keeps each render near 0.2 s


@pytest.fixture
def request_for(sd_model_dir: Path, deterministic: dict[str, object]):
    def make(**changes: object) -> RenderRequest:
        base = {
            "model_path": sd_model_dir,
            "prompt": "a lighthouse at dusk, oil painting",
            "negative_prompt": "blurry",
            "seeds": (1234,),
            "scheduler": "PNDM",
            "steps": STEPS,
            "guidance": 7.5,
            "width": 64,
            "height": 64,
        }
        return render_request(**{**base, **changes})

    return make


def test_same_request_twice_gives_the_same_pixels_and_png(request_for) -> None:
    first, second = render(request_for())[0], render(request_for())[0]
    assert first.pixel_sha256 == second.pixel_sha256
    assert first.png == second.png


def test_seed_and_prompt_change_the_pixels(request_for) -> None:
    shas = {
        render(request_for())[0].pixel_sha256,
        render(request_for(seeds=(1235,)))[0].pixel_sha256,
        render(request_for(prompt="a red bicycle"))[0].pixel_sha256,
    }
    assert len(shas) == 3


def test_png_round_trips_to_the_recorded_pixel_hash(request_for) -> None:
    rendered = render(request_for())[0]
    with Image.open(io.BytesIO(rendered.png)) as decoded:
        assert decoded.size == (64, 64)
        assert pixel_sha256(decoded) == rendered.pixel_sha256


def test_the_render_is_not_flat(request_for) -> None:
    import numpy as np

    with Image.open(io.BytesIO(render(request_for())[0].png)) as decoded:
        pixels = np.asarray(decoded.convert("RGB"), dtype=np.float64)
    assert pixels.std() > 20  # tiny random models tend to render flat grey; ours must not


def test_batch_records_its_size_and_indices(request_for, record_property) -> None:
    batch = render(request_for(seeds=(1234, 1235), batch_index_offset=4))
    assert [image.seed for image in batch] == [1234, 1235]
    assert [image.batch_index for image in batch] == [4, 5]
    for index, image in enumerate(batch):
        assert image.environment["seed"] == image.seed
        assert image.environment["batch_index"] == 4 + index
        assert image.environment["batch_size"] == 2
    assert batch[0].pixel_sha256 != batch[1].pixel_sha256
    # Batch size may move the last bits on some backends; record what this machine does.
    single = render(request_for(seeds=(1234,)))[0]
    record_property("batch_of_2_equals_single", single.pixel_sha256 == batch[0].pixel_sha256)
    assert single.environment["batch_size"] == 1


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_catalogued_scheduler_renders(request_for, name: str) -> None:
    rendered = render(request_for(scheduler=name))[0]
    assert rendered.environment["scheduler"] == name
    assert rendered.environment["scheduler_config"]["_class_name"] == SCHEDULERS[name]
    assert render(request_for(scheduler=name))[0].pixel_sha256 == rendered.pixel_sha256


def test_schedulers_give_different_pixels(request_for) -> None:
    shas = {
        render(request_for(scheduler=name))[0].pixel_sha256 for name in ("PNDM", "DDIM", "K-LMS")
    }
    assert len(shas) == 3


def test_a_render_leaves_the_cached_pipeline_untouched(request_for, sd_model_dir: Path) -> None:
    cached = pipeline.load(str(sd_model_dir))
    scheduler, unet = cached.scheduler, cached.unet
    render(request_for(scheduler="DDIM"))
    assert pipeline.load(str(sd_model_dir)) is cached
    assert cached.scheduler is scheduler and type(scheduler).__name__ == "PNDMScheduler"
    # The per-render pipeline shares modules with the cached one rather than copying weights.
    fresh = pipeline._with_scheduler(cached, "Euler")
    assert fresh.unet is unet and fresh.vae is cached.vae
    assert fresh.unet.conv_in.weight.data_ptr() == unet.conv_in.weight.data_ptr()


def test_environment_records_what_moves_pixels(request_for, sd_model_dir: Path) -> None:
    environment = render(request_for())[0].environment
    assert json.loads(json.dumps(environment)) == environment
    for key in ("python", "torch", "diffusers", "transformers", "numpy", "device_name"):
        assert environment[key]
    assert environment["device"] == pipeline.device_name()
    assert environment["dtype"] == "float32" and environment["precision"] == "fp32"
    assert environment["torch_threads"] == RENDER_THREADS == torch.get_num_threads()
    assert environment["determinism"]["deterministic_algorithms"] is True
    assert environment["determinism"]["cudnn_benchmark"] is False
    assert environment["scheduler_config"]["timestep_spacing"] == "leading"
    assert environment["attention_processors"]["unet"]
    assert environment["model_path"] == str(sd_model_dir)


def test_progress_counts_recipe_steps(request_for) -> None:
    for name in ("PNDM", "DPM++ 2M"):
        seen: list[tuple[int, int]] = []

        def on_step(step: int, total: int, seen: list[tuple[int, int]] = seen) -> None:
            seen.append((step, total))

        render(request_for(scheduler=name), on_step=on_step)
        assert [step for step, _ in seen] == list(range(1, STEPS + 1)), name
        assert {total for _, total in seen} == {STEPS}


def test_fp16_on_cpu_is_refused_not_downgraded(request_for) -> None:
    # render() loads through pipeline.load on the worker's device; naming the CPU here checks the
    # refusal on GPU machines too, instead of skipping there.
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        pipeline.load(request_for(precision="fp16").model_path, "fp16", device="cpu")


def test_png_text_chunks_do_not_change_the_pixel_hash() -> None:
    image = Image.new("RGB", (8, 8), (10, 200, 30))
    plain = png_bytes(image)
    tagged = png_bytes(image, {"parameters": "一只猫, Steps: 20", "seedbank": "1"})
    assert plain != tagged and png_bytes(image) == plain
    with Image.open(io.BytesIO(tagged)) as decoded:
        assert decoded.text["parameters"] == "一只猫, Steps: 20"
        assert pixel_sha256(decoded) == pixel_sha256(image)


def test_configure_determinism_rejects_zero_threads() -> None:
    with pytest.raises(ValueError):
        pipeline.configure_determinism(0)


def test_a_fresh_process_renders_the_same_pixels(request_for) -> None:
    request = request_for(seeds=(77, 78))
    in_process = [image.pixel_sha256 for image in render(request)]
    script = (
        "import json, sys\n"
        "from engine import pipeline\n"
        f"pipeline.configure_determinism({RENDER_THREADS})\n"
        "from tests.engine.support import render_request\n"
        "request = render_request(**json.loads(sys.argv[1]))\n"
        "print(json.dumps([image.pixel_sha256 for image in pipeline.render(request)]))\n"
    )
    argument = json.dumps(request_fields(request))  # the seeds tuple comes back as a list
    result = subprocess.run(
        [sys.executable, "-c", script, argument],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == in_process
