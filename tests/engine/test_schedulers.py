"""The scheduler catalogue: names map to classes, model config survives, configs record fully,
outside names (A1111, DiffusionDB) map to canonical ones, and every scheduler renders repeatably."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import schedulers
from engine.schedulers import (
    A1111_SAMPLERS,
    CANONICAL_TO_A1111,
    DEFAULT_SCHEDULER,
    DIFFUSIONDB_SAMPLER_NAMES,
    DIFFUSIONDB_SAMPLERS,
    SCHEDULERS,
    SchedulerSpec,
    build_scheduler,
    canonical_scheduler,
    is_ancestral,
    scheduler_config,
)
from engine.tiny_models import SD15_SCHEDULER
from tests.engine.support import render_request

# diffusers' KDPM2 schedulers call np.log on torch tensors, 1000 times per set_timesteps, and
# numpy 2 warns on each: tens of thousands of identical lines that bury real warnings.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array_wrap__ must accept context and return_scalar:DeprecationWarning"
)

# Six steps is past every scheduler's warm-up (PNDM's, the multistep solvers' lower orders)
# while keeping the 22 renders below a few seconds on the tiny model.
RENDER_STEPS = 6


def test_catalogue_names_order_and_default() -> None:
    assert SCHEDULERS == {
        "PNDM": "PNDMScheduler",
        "DDIM": "DDIMScheduler",
        "K-LMS": "LMSDiscreteScheduler",
        "Euler": "EulerDiscreteScheduler",
        "Euler a": "EulerAncestralDiscreteScheduler",
        "Heun": "HeunDiscreteScheduler",
        "DPM2": "KDPM2DiscreteScheduler",
        "DPM2 a": "KDPM2AncestralDiscreteScheduler",
        "DPM++ 2M": "DPMSolverMultistepScheduler",
        "DPM++ 2M Karras": "DPMSolverMultistepScheduler",
        "UniPC": "UniPCMultistepScheduler",
    }
    # Forms list schedulers in this order, PNDM (the classic SD default) first.
    assert list(SCHEDULERS) == list(schedulers.SCHEDULER_SPECS)
    assert list(SCHEDULERS) == [
        "PNDM",
        "DDIM",
        "K-LMS",
        "Euler",
        "Euler a",
        "Heun",
        "DPM2",
        "DPM2 a",
        "DPM++ 2M",
        "DPM++ 2M Karras",
        "UniPC",
    ]
    assert DEFAULT_SCHEDULER == "PNDM"


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_each_scheduler_builds_on_the_model_config(name: str) -> None:
    scheduler = build_scheduler(name, SD15_SCHEDULER)
    assert type(scheduler).__name__ == SCHEDULERS[name]
    config = scheduler_config(scheduler)
    assert config["_class_name"] == SCHEDULERS[name]
    assert (config["beta_start"], config["beta_end"]) == (0.00085, 0.012)
    assert config["beta_schedule"] == "scaled_linear"
    assert not [key for key in config if key.startswith("_") and key != "_class_name"]
    assert json.loads(json.dumps(config)) == config


def test_ddim_keeps_sd_clip_sample_off() -> None:
    # DDIM defaults clip_sample to True; SD's config says False and must win.
    assert scheduler_config(build_scheduler("DDIM", SD15_SCHEDULER))["clip_sample"] is False


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_recorded_config_rebuilds_the_same_scheduler(name: str) -> None:
    recorded = scheduler_config(build_scheduler(name, SD15_SCHEDULER))
    assert scheduler_config(build_scheduler(name, recorded)) == recorded


def test_unknown_name_says_what_is_known() -> None:
    with pytest.raises(KeyError, match="DPM\\+\\+ 2M"):
        build_scheduler("DPM++ 9000", SD15_SCHEDULER)


def test_overrides_apply_over_the_model_config(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SchedulerSpec("DPMSolverMultistepScheduler", {"solver_order": 3})
    monkeypatch.setitem(schedulers.SCHEDULER_SPECS, "DPM++ 3M test", spec)
    config = scheduler_config(build_scheduler("DPM++ 3M test", SD15_SCHEDULER))
    assert config["solver_order"] == 3
    assert config["beta_schedule"] == "scaled_linear"


def test_dpmpp_2m_and_its_karras_variant_differ_only_in_sigmas() -> None:
    plain = scheduler_config(build_scheduler("DPM++ 2M", SD15_SCHEDULER))
    karras = scheduler_config(build_scheduler("DPM++ 2M Karras", SD15_SCHEDULER))
    assert (plain["algorithm_type"], plain["solver_order"]) == ("dpmsolver++", 2)
    assert plain["use_karras_sigmas"] is False and karras["use_karras_sigmas"] is True
    assert {key for key in plain if plain[key] != karras[key]} == {"use_karras_sigmas"}


@pytest.mark.parametrize("name", ["K-LMS", "Euler", "Heun", "DPM2", "DPM2 a", "DPM++ 2M", "UniPC"])
def test_a_model_config_that_is_itself_a_variant_does_not_leak(name: str) -> None:
    # Fine-tunes often ship a DPM++ 2M SDE Karras scheduler_config.json; picking a plain name
    # on such a model must still give the plain sampler.
    shipped = {
        **SD15_SCHEDULER,
        "_class_name": "DPMSolverMultistepScheduler",
        "algorithm_type": "sde-dpmsolver++",
        "solver_order": 3,
        "use_karras_sigmas": True,
        "use_exponential_sigmas": False,
    }
    config = scheduler_config(build_scheduler(name, shipped))
    assert config["use_karras_sigmas"] is False
    assert config == scheduler_config(
        build_scheduler(name, {**shipped, "use_karras_sigmas": False})
    )
    if name == "DPM++ 2M":
        assert (config["algorithm_type"], config["solver_order"]) == ("dpmsolver++", 2)


def test_switching_scheduler_class_keeps_unrelated_keys() -> None:
    ddim = build_scheduler("DDIM", SD15_SCHEDULER)
    back = build_scheduler("PNDM", ddim.config)  # type: ignore[attr-defined]
    assert scheduler_config(back)["skip_prk_steps"] is True


def test_ancestral_samplers_are_marked() -> None:
    assert [name for name in SCHEDULERS if is_ancestral(name)] == ["Euler a", "DPM2 a"]
    assert is_ancestral("k_euler_ancestral") and not is_ancestral("PLMS")


# --- outside names -------------------------------------------------------------------------


def test_a1111_names_map_as_documented() -> None:
    assert A1111_SAMPLERS == {
        "Euler a": "Euler a",
        "Euler": "Euler",
        "LMS": "K-LMS",
        "Heun": "Heun",
        "DPM2": "DPM2",
        "DPM2 a": "DPM2 a",
        "DPM++ 2M": "DPM++ 2M",
        "DPM++ 2M Karras": "DPM++ 2M Karras",
        "DDIM": "DDIM",
        "PLMS": "PNDM",
        "UniPC": "UniPC",
    }
    for a1111, canonical in A1111_SAMPLERS.items():
        assert canonical_scheduler(a1111) == canonical


def test_every_canonical_name_has_one_a1111_name_and_back() -> None:
    assert set(CANONICAL_TO_A1111) == set(SCHEDULERS)
    assert CANONICAL_TO_A1111["PNDM"] == "PLMS" and CANONICAL_TO_A1111["K-LMS"] == "LMS"
    for canonical, a1111 in CANONICAL_TO_A1111.items():
        assert canonical_scheduler(canonical) == canonical
        assert A1111_SAMPLERS[a1111] == canonical
        if canonical not in ("PNDM", "K-LMS"):
            assert a1111 == canonical


EXPECTED_DIFFUSIONDB = {
    1: ("ddim", "DDIM"),
    2: ("plms", "PNDM"),
    3: ("k_euler", "Euler"),
    4: ("k_euler_ancestral", "Euler a"),
    5: ("k_heun", "Heun"),
    6: ("k_dpm_2", "DPM2"),
    7: ("k_dpm_2_ancestral", "DPM2 a"),
    8: ("k_lms", "K-LMS"),
}


@pytest.mark.parametrize("code", sorted(EXPECTED_DIFFUSIONDB))
def test_diffusiondb_codes_and_names_map_as_documented(code: int) -> None:
    name, canonical = EXPECTED_DIFFUSIONDB[code]
    assert DIFFUSIONDB_SAMPLERS[code] == canonical
    assert DIFFUSIONDB_SAMPLER_NAMES[name] == canonical
    for spelling in (code, str(code), f" {code} ", name, name.upper()):
        assert canonical_scheduler(spelling) == canonical


def test_diffusiondb_tables_hold_exactly_the_documented_codes() -> None:
    assert DIFFUSIONDB_SAMPLERS == {code: pair[1] for code, pair in EXPECTED_DIFFUSIONDB.items()}
    assert DIFFUSIONDB_SAMPLER_NAMES == dict(EXPECTED_DIFFUSIONDB.values())


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("euler A", "Euler a"),
        ("EULER", "Euler"),
        ("dpm++ 2m karras", "DPM++ 2M Karras"),
        ("k-lms", "K-LMS"),
        ("lms", "K-LMS"),
        ("pndm", "PNDM"),
        ("unipc", "UniPC"),
        ("k_dpmpp_2m_ka", "DPM++ 2M Karras"),
        ("k_euler_a", "Euler a"),
    ],
)
def test_case_is_ignored_where_unambiguous(spelling: str, canonical: str) -> None:
    assert canonical_scheduler(spelling) == canonical


@pytest.mark.parametrize(
    "value", ["DPM++ SDE Karras", "", "Euler  a", "euler_a", 0, 10, -1, "²", "٣", "3.0"]
)
def test_unknown_names_raise_and_list_what_is_accepted(value: str | int) -> None:
    with pytest.raises(ValueError, match="Unknown scheduler") as raised:
        canonical_scheduler(value)
    message = str(raised.value)
    for accepted in ("PNDM", "DPM++ 2M Karras", "PLMS", "LMS", "k_euler_ancestral", "8 (K-LMS)"):
        assert accepted in message


def test_diffusiondb_others_code_says_why_it_cannot_map() -> None:
    with pytest.raises(ValueError, match="others"):
        canonical_scheduler(9)


@pytest.mark.parametrize("value", [True, False, 3.0, None])
def test_non_names_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="name or a DiffusionDB code"):
        canonical_scheduler(value)  # type: ignore[arg-type]


# --- rendering -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def render_scheduler(sd_model_dir: Path, deterministic: dict[str, object]):
    from engine.pipeline import render

    def run(name: str) -> str:
        request = render_request(
            model_path=str(sd_model_dir),
            prompt="a lighthouse at dusk, oil painting",
            negative_prompt="blurry",
            seeds=(4321,),
            scheduler=name,
            steps=RENDER_STEPS,
            guidance=7.5,
            width=64,
            height=64,
        )
        (image,) = render(request)
        assert image.environment["scheduler"] == name
        assert image.environment["scheduler_config"]["_class_name"] == SCHEDULERS[name]
        return image.pixel_sha256

    return run


@pytest.fixture(scope="module")
def pixel_hashes(render_scheduler) -> dict[str, tuple[str, str]]:
    # Each scheduler rendered twice, one after the other, from a fresh per-render scheduler and
    # fresh per-image generators; rendered once per module since every test below reads them.
    return {name: (render_scheduler(name), render_scheduler(name)) for name in SCHEDULERS}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_scheduler_renders_the_same_pixels_twice(
    pixel_hashes: dict[str, tuple[str, str]], name: str
) -> None:
    # Ancestral samplers draw new noise at every step; it comes from the per-image CPU
    # generators the pipeline is handed, so they repeat exactly too.
    first, second = pixel_hashes[name]
    assert first == second


def test_every_scheduler_gives_different_pixels(pixel_hashes: dict[str, tuple[str, str]]) -> None:
    by_hash: dict[str, list[str]] = {}
    for name, (first, _) in pixel_hashes.items():
        by_hash.setdefault(first, []).append(name)
    assert [names for names in by_hash.values() if len(names) > 1] == []
