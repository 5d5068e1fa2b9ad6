"""The scheduler catalogue: canonical names, how each is built, and its recordable config.

A recipe names its scheduler by a canonical name (the words users see in A1111 and DiffusionDB),
not by a diffusers class, because one class can be several samplers (DPM++ 2M vs its Karras
variant differ only in config overrides).
"""

from __future__ import annotations

import json
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


SCHEDULER_SPECS: dict[str, SchedulerSpec] = {
    "PNDM": SchedulerSpec("PNDMScheduler"),
    "DDIM": SchedulerSpec("DDIMScheduler"),
    "K-LMS": SchedulerSpec("LMSDiscreteScheduler"),
    "Euler": SchedulerSpec("EulerDiscreteScheduler"),
    "Euler a": SchedulerSpec("EulerAncestralDiscreteScheduler"),
    "DPM++ 2M": SchedulerSpec("DPMSolverMultistepScheduler"),
}
SCHEDULERS: dict[str, str] = {name: spec.class_name for name, spec in SCHEDULER_SPECS.items()}
DEFAULT_SCHEDULER = "PNDM"


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
    return json.loads(json.dumps(config, default=_jsonable, sort_keys=True))  # type: ignore[no-any-return]


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"Cannot record scheduler config value {value!r} as JSON")
