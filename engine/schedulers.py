"""The scheduler catalogue: canonical names, how each is built, and its recordable config.

A recipe names its scheduler by a canonical name (the words users see in A1111 and DiffusionDB),
not by a diffusers class, because one class can be several samplers (DPM++ 2M vs its Karras
variant differ only in config overrides). Names arriving from elsewhere (A1111 infotext,
DiffusionDB metadata, API callers) go through `canonical_scheduler` first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffusers import SchedulerMixin


@dataclass(frozen=True)
class SchedulerSpec:
    class_name: str
    # Applied over the model's own scheduler config (e.g. {"use_karras_sigmas": True}).
    overrides: Mapping[str, Any] = field(default_factory=dict)
    # Ancestral samplers draw fresh noise at every step (from the per-image generators), so a
    # seed alone fixes their output only when those generators are used for the whole run.
    ancestral: bool = False


# A model folder's scheduler_config.json may itself be a sampler variant (fine-tunes often ship
# DPM++ 2M Karras), and from_config keeps its keys. Every class that knows these sigma-spacing
# flags therefore gets them said outright, so "Euler" on such a model is still A1111's Euler and
# not a silent Euler Karras. They equal the classes' defaults: SD's own config records the same.
_DEFAULT_SIGMAS: dict[str, Any] = {
    "use_karras_sigmas": False,
    "use_exponential_sigmas": False,
    "use_beta_sigmas": False,
}
# "DPM++ 2M" is DPM-Solver++ (data prediction), second order, multistep. These are diffusers'
# defaults too; pinned because a model's config may carry another algorithm (2M SDE) or order.
_DPMPP_2M: dict[str, Any] = {"algorithm_type": "dpmsolver++", "solver_order": 2}

# Classes and overrides follow diffusers' A1111/k-diffusion table
# (docs/source/en/api/schedulers/overview.md): Karras variants are "init with
# use_karras_sigmas=True", everything else is the class as it comes.
SCHEDULER_SPECS: dict[str, SchedulerSpec] = {
    "PNDM": SchedulerSpec("PNDMScheduler"),
    "DDIM": SchedulerSpec("DDIMScheduler"),
    "K-LMS": SchedulerSpec("LMSDiscreteScheduler", _DEFAULT_SIGMAS),
    "Euler": SchedulerSpec("EulerDiscreteScheduler", _DEFAULT_SIGMAS),
    # EulerAncestralDiscreteScheduler has no sigma-spacing flags to pin.
    "Euler a": SchedulerSpec("EulerAncestralDiscreteScheduler", ancestral=True),
    "Heun": SchedulerSpec("HeunDiscreteScheduler", _DEFAULT_SIGMAS),
    "DPM2": SchedulerSpec("KDPM2DiscreteScheduler", _DEFAULT_SIGMAS),
    "DPM2 a": SchedulerSpec("KDPM2AncestralDiscreteScheduler", _DEFAULT_SIGMAS, ancestral=True),
    "DPM++ 2M": SchedulerSpec("DPMSolverMultistepScheduler", {**_DEFAULT_SIGMAS, **_DPMPP_2M}),
    "DPM++ 2M Karras": SchedulerSpec(
        "DPMSolverMultistepScheduler",
        {**_DEFAULT_SIGMAS, **_DPMPP_2M, "use_karras_sigmas": True},
    ),
    # diffusers' defaults (bh2, order 2). A1111's UniPC defaults to bh1 / order 3 (its settings
    # "UniPC variant" / "UniPC order"); the name maps by intent, not by identical pixels.
    "UniPC": SchedulerSpec("UniPCMultistepScheduler", _DEFAULT_SIGMAS),
}
SCHEDULERS: dict[str, str] = {name: spec.class_name for name, spec in SCHEDULER_SPECS.items()}
DEFAULT_SCHEDULER = "PNDM"

# A1111's sampler labels (modules/sd_samplers_kdiffusion.py, sd_samplers_compvis.py). A1111
# calls PNDM "PLMS" and K-LMS "LMS"; the rest share our names.
A1111_SAMPLERS: dict[str, str] = {
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
CANONICAL_TO_A1111: dict[str, str] = {
    canonical: a1111 for a1111, canonical in A1111_SAMPLERS.items()
}
# A1111 also accepts these aliases (its API's sampler_name, old scripts); never written.
_A1111_ALIASES: dict[str, str] = {
    "k_euler_a": "Euler a",
    "k_dpm_2_a": "DPM2 a",
    "k_dpmpp_2m": "DPM++ 2M",
    "k_dpmpp_2m_ka": "DPM++ 2M Karras",
}

# DiffusionDB's metadata.parquet stores the sampler as an int code, its per-part JSON files as
# the name ("sa": "k_lms"); its README gives the mapping. Code 9 is "others": not recorded.
DIFFUSIONDB_SAMPLER_NAMES: dict[str, str] = {
    "ddim": "DDIM",
    "plms": "PNDM",
    "k_euler": "Euler",
    "k_euler_ancestral": "Euler a",
    "k_heun": "Heun",
    "k_dpm_2": "DPM2",
    "k_dpm_2_ancestral": "DPM2 a",
    "k_lms": "K-LMS",
}
DIFFUSIONDB_SAMPLERS: dict[int, str] = {
    code: DIFFUSIONDB_SAMPLER_NAMES[name]
    for code, name in enumerate(DIFFUSIONDB_SAMPLER_NAMES, start=1)
}
_DIFFUSIONDB_OTHERS = 9


def _casefolded_names() -> dict[str, str]:
    """Every accepted spelling, casefolded, for the names where case does not matter.

    A spelling two different schedulers share once casefolded is left out, so case-insensitive
    matching can never pick one of them by accident.
    """
    spellings: dict[str, set[str]] = {}
    sources = (
        {name: name for name in SCHEDULER_SPECS},
        A1111_SAMPLERS,
        _A1111_ALIASES,
        DIFFUSIONDB_SAMPLER_NAMES,
    )
    for source in sources:
        for spelling, canonical in source.items():
            spellings.setdefault(spelling.casefold(), set()).add(canonical)
    return {key: next(iter(found)) for key, found in spellings.items() if len(found) == 1}


_BY_CASEFOLDED_NAME = _casefolded_names()


def canonical_scheduler(value: str | int) -> str:
    """The canonical name for a canonical name, an A1111 sampler name or a DiffusionDB code.

    DiffusionDB codes may be ints or digit strings ("4") or its names ("k_euler_ancestral").
    Exact spellings win; otherwise case is ignored where that is unambiguous.
    """
    # bool is an int: True would otherwise silently mean DiffusionDB's code 1 (DDIM).
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"Scheduler must be a name or a DiffusionDB code, not {value!r}.")
    if isinstance(value, int):
        if value in DIFFUSIONDB_SAMPLERS:
            return DIFFUSIONDB_SAMPLERS[value]
        if value == _DIFFUSIONDB_OTHERS:
            raise ValueError(
                "DiffusionDB sampler code 9 means 'others': the sampler was not recorded, "
                "so no scheduler can be chosen for it."
            )
        raise ValueError(_unknown_message(value))
    if value in SCHEDULER_SPECS:
        return value
    if value in A1111_SAMPLERS:
        return A1111_SAMPLERS[value]
    text = value.strip()
    if text.isascii() and text.isdigit():  # isdigit alone accepts "²" and other digits
        return canonical_scheduler(int(text))
    found = _BY_CASEFOLDED_NAME.get(text.casefold())
    if found is None:
        raise ValueError(_unknown_message(value))
    return found


def _unknown_message(value: str | int) -> str:
    codes = ", ".join(f"{code} ({name})" for code, name in DIFFUSIONDB_SAMPLERS.items())
    return (
        f"Unknown scheduler {value!r}. Accepted: canonical names ({', '.join(SCHEDULER_SPECS)}); "
        f"A1111 sampler names ({', '.join(A1111_SAMPLERS)}); "
        f"DiffusionDB codes {codes} or names ({', '.join(DIFFUSIONDB_SAMPLER_NAMES)})."
    )


def is_ancestral(name: str) -> bool:
    """Whether the sampler adds fresh noise each step (A1111's "a" samplers)."""
    return SCHEDULER_SPECS[canonical_scheduler(name)].ancestral


def build_scheduler(name: str, base_config: Mapping[str, Any]) -> SchedulerMixin:
    """A fresh scheduler of the named kind, on the model's own config plus the name's overrides."""
    spec = SCHEDULER_SPECS.get(name)
    if spec is None:
        raise KeyError(f"Unknown scheduler {name!r}; known: {', '.join(SCHEDULER_SPECS)}")
    import diffusers

    cls = getattr(diffusers, spec.class_name)
    # from_config keeps keys the class ignores (e.g. PNDM's clip_sample=False from SD's config)
    # so that switching PNDM -> DDIM -> PNDM never loses them.
    return cls.from_config(dict(base_config), **dict(spec.overrides))  # type: ignore[no-any-return]


def scheduler_config(scheduler: SchedulerMixin) -> dict[str, Any]:
    """The scheduler's full config as plain JSON values, for recording beside the pixels."""
    # Every scheduler class mixes in ConfigMixin's .config; SchedulerMixin alone does not say so.
    recorded: Mapping[str, Any] = scheduler.config  # type: ignore[attr-defined]
    config = {
        key: value
        for key, value in dict(recorded).items()
        if not key.startswith("_") or key == "_class_name"
    }
    config.setdefault("_class_name", type(scheduler).__name__)
    # A round-trip through JSON turns tuples and numpy scalars/arrays into lists and numbers.
    plain = json.loads(json.dumps(config, default=_jsonable, sort_keys=True))
    return _finite(plain)  # type: ignore[no-any-return]


# JSON (and Postgres jsonb) has no infinities or NaN, yet DPM++ 2M's config holds
# lambda_min_clipped = -inf. They are recorded as these strings and read back by
# `config_from_record`, so a recorded config rebuilds the very same scheduler.
NON_FINITE = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def config_from_record(config: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded scheduler config with its non-finite floats restored."""
    return {
        key: NON_FINITE[value] if isinstance(value, str) and value in NON_FINITE else value
        for key, value in config.items()
    }


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"Cannot record scheduler config value {value!r} as JSON")
