"""Other tools' sampler names → Seedbank's scheduler catalogue (engine.schedulers).

Only names whose algorithm and sigma spacing are the catalogue entry's map; anything else
(an SDE sampler, an exponential or "simple" schedule, LCM…) gives None: the record keeps the
tool's own words and the import report says the name is unknown, rather than guessing a
scheduler that would draw different pixels.
"""

from __future__ import annotations

from engine.schedulers import canonical_scheduler

# ComfyUI's KSampler: (sampler_name, scheduler). Fooocus and SwarmUI render with ComfyUI and
# write the same words. "normal" is the spacing A1111 and diffusers use by default.
COMFYUI: dict[tuple[str, str], str] = {
    ("euler", "normal"): "Euler",
    ("euler_ancestral", "normal"): "Euler a",
    ("heun", "normal"): "Heun",
    ("dpm_2", "normal"): "DPM2",
    ("dpm_2_ancestral", "normal"): "DPM2 a",
    ("lms", "normal"): "K-LMS",
    ("dpmpp_2m", "normal"): "DPM++ 2M",
    ("dpmpp_2m", "karras"): "DPM++ 2M Karras",
    ("ddim", "ddim_uniform"): "DDIM",
    ("ddim", "normal"): "DDIM",
    ("uni_pc", "normal"): "UniPC",
}
# InvokeAI's scheduler field (invokeai/backend/stable_diffusion/schedulers): "_k" is Karras.
INVOKEAI: dict[str, str] = {
    "ddim": "DDIM",
    "pndm": "PNDM",
    "lms": "K-LMS",
    "heun": "Heun",
    "euler": "Euler",
    "euler_a": "Euler a",
    "kdpm_2": "DPM2",
    "kdpm_2_a": "DPM2 a",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_k": "DPM++ 2M Karras",
    "unipc": "UniPC",
}
COMFYUI_TOOLS = ("comfyui", "fooocus", "swarmui")
# Tables written by hand or by scripts use any tool's words: A1111's first, then ComfyUI's.
GENERIC_TOOLS = ("csv", "jsonl", "lexica")


def scheduler_for(tool: str, sampler: str, schedule: str = "") -> str | None:
    """The catalogue name for `tool`'s sampler (and schedule, where the tool names one apart),
    or None when it has no exact counterpart."""
    name, spacing = sampler.strip(), schedule.strip().lower()
    if tool in COMFYUI_TOOLS:
        return COMFYUI.get((name.lower(), spacing or "normal"))
    if tool == "invokeai":
        return INVOKEAI.get(name.lower())
    if spacing and spacing not in {"automatic", "native"}:
        # A1111 1.9+ / NovelAI name the spacing apart; the infotext reader joins the known ones.
        name = f"{name} {spacing.capitalize()}"
    try:
        return canonical_scheduler(name)
    except ValueError:
        if tool in GENERIC_TOOLS:
            return COMFYUI.get((name.lower(), spacing or "normal"))
        return None


def unknown_sampler_warning(tool: str, sampler: str, schedule: str = "") -> str:
    """What an import report says of a sampler `scheduler_for` did not map."""
    words = f"{sampler} / {schedule}" if schedule else sampler
    return f"unknown {tool} sampler {words!r}: kept as written, no scheduler chosen"
