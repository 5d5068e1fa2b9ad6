"""The scheduler catalogue: names map to classes, model config survives, configs record fully."""

from __future__ import annotations

import json

import pytest

from generator import schedulers
from generator.schedulers import (
    DEFAULT_SCHEDULER,
    SCHEDULERS,
    SchedulerSpec,
    build_scheduler,
    scheduler_config,
)
from generator.tiny_models import SD15_SCHEDULER


def test_catalogue_names_and_default() -> None:
    assert SCHEDULERS == {
        "PNDM": "PNDMScheduler",
        "DDIM": "DDIMScheduler",
        "K-LMS": "LMSDiscreteScheduler",
        "Euler": "EulerDiscreteScheduler",
        "Euler a": "EulerAncestralDiscreteScheduler",
        "DPM++ 2M": "DPMSolverMultistepScheduler",
    }
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
    assert build_scheduler("DDIM", SD15_SCHEDULER).config.clip_sample is False


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_recorded_config_rebuilds_the_same_scheduler(name: str) -> None:
    recorded = scheduler_config(build_scheduler(name, SD15_SCHEDULER))
    assert scheduler_config(build_scheduler(name, recorded)) == recorded


def test_unknown_name_says_what_is_known() -> None:
    with pytest.raises(KeyError, match="DPM\\+\\+ 2M"):
        build_scheduler("DPM++ 9000", SD15_SCHEDULER)


def test_overrides_apply_over_the_model_config(monkeypatch: pytest.MonkeyPatch) -> None:
    karras = SchedulerSpec("DPMSolverMultistepScheduler", {"use_karras_sigmas": True})
    monkeypatch.setitem(schedulers.SCHEDULER_SPECS, "DPM++ 2M Karras", karras)
    config = scheduler_config(build_scheduler("DPM++ 2M Karras", SD15_SCHEDULER))
    assert config["use_karras_sigmas"] is True
    assert config["beta_schedule"] == "scaled_linear"


def test_switching_scheduler_class_keeps_unrelated_keys() -> None:
    ddim = build_scheduler("DDIM", SD15_SCHEDULER)
    back = build_scheduler("PNDM", ddim.config)
    assert scheduler_config(back)["skip_prk_steps"] is True
