"""A LoRA extracted from a full fine-tune: the demo's "outline" style as an add-on resource.

The outline fine-tune (engine.training.diffusion) changes only the UNet of the scene model.
Each changed weight's delta is split by truncated SVD into the two factors a LoRA multiplies
(Linear: ΔW ≈ B·A; Conv2d: ΔW reshaped to (out, in·k·k), so A is a k×k conv in→r and B a 1×1
conv r→out), the way kohya's `extract_lora_from_models` and ComfyUI's LoRA extraction do.
The factors go into peft LoRA layers on the base UNet and are saved in diffusers' peft layout,
so `load_lora_weights` applies every tensor of the file.

Bit-identical on rebuild: the SVD runs in float64 on the CPU with one thread, each singular
pair's sign is fixed by a rule (not left to LAPACK), and the file is written from a sorted
state dict with no metadata beyond diffusers' one format tag.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.torch_compat import ensure_torchvision

ensure_torchvision()

from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel  # noqa: E402

from engine.tiny_models import StableDiffusionPipeline, build_atomically  # noqa: E402

LORA_FILE = "scenes-outline-lora.safetensors"
# Chosen by rendering base + LoRA against the fine-tune (see build_outline_lora's docstring).
RANK = 16


@dataclass(frozen=True)
class DeltaReport:
    """How much of the fine-tune's change (Frobenius norms over the UNet) the LoRA holds."""

    layers: int  # Linear and Conv2d layers whose weights changed, each given a LoRA
    changed: float  # norm of those weights' deltas
    truncated: float  # norm of what the rank cut leaves out of them
    not_held: float  # norm of the deltas no LoRA holds: biases, norm scales and shifts
    not_held_tensors: int


@contextmanager
def _one_thread() -> Iterator[None]:
    # Reductions split by thread; the same bytes need the same split, so one thread always.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            yield
    finally:
        torch.set_num_threads(threads)


def factorise(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, A) with B·A the best rank-`rank` approximation of `delta` (out, in·…), in float64.

    √S goes to each side so both factors have the same scale; each pair's sign makes the
    largest entry of B's column positive, so another LAPACK cannot flip it. A matrix of lower
    rank than `rank` (conv_out has 4 rows) gets zero pairs: every layer then has one rank, and
    a loader infers rank and alpha from the shapes alone (see build_outline_lora).
    """
    matrix = delta.reshape(delta.shape[0], -1).to(torch.float64)
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    r = min(rank, s.numel())
    u, s, vh = u[:, :r], s[:r], vh[:r]
    sign = torch.sign(u.gather(0, u.abs().argmax(dim=0, keepdim=True)))[0]
    sign[sign == 0] = 1.0
    root = s.sqrt()
    up = torch.zeros(matrix.shape[0], rank, dtype=torch.float64)
    down = torch.zeros(rank, matrix.shape[1], dtype=torch.float64)
    up[:, :r] = u * (sign * root)
    down[:r] = (sign * root)[:, None] * vh
    return up, down


def lora_factors(
    base: UNet2DConditionModel, tuned: UNet2DConditionModel, rank: int
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], DeltaReport]:
    """{layer: (B, A)} for every Linear and Conv2d whose weight the fine-tune changed, and what
    the factors leave out."""
    tuned_parameters = dict(tuned.named_parameters())
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    changed = truncated = 0.0
    held: set[str] = set()
    for name, module in sorted(base.named_modules()):
        if not isinstance(module, torch.nn.Linear | torch.nn.Conv2d):
            continue
        delta = (
            tuned_parameters[f"{name}.weight"].detach().double() - module.weight.detach().double()
        )
        held.add(f"{name}.weight")
        if not delta.any():
            continue
        if isinstance(module, torch.nn.Conv2d) and (
            module.groups != 1 or module.dilation != (1, 1)
        ):
            raise ValueError(f"{name}: a LoRA conv cannot hold a grouped or dilated conv's delta")
        up, down = factorise(delta, rank)
        factors[name] = (up, down)
        changed += float(delta.square().sum())
        truncated += float((delta.reshape(delta.shape[0], -1) - up @ down).square().sum())
    not_held, moved = 0.0, 0
    for name, parameter in sorted(base.named_parameters()):
        if name in held:
            continue
        delta = tuned_parameters[name].detach().double() - parameter.detach().double()
        if delta.any():
            not_held += float(delta.square().sum())
            moved += 1
    report = DeltaReport(len(factors), math.sqrt(changed), math.sqrt(truncated),
                         math.sqrt(not_held), moved)  # fmt: skip
    return factors, report


def lora_config(factors: dict[str, tuple[torch.Tensor, torch.Tensor]], rank: int) -> dict[str, Any]:
    """peft LoraConfig arguments for these factors: scale 1 (alpha = rank) on every layer, as
    diffusers assumes for a peft-layout file without alphas."""
    return {
        "r": rank,
        "lora_alpha": rank,
        # Full names: peft matches a target as a suffix, so no other layer is caught.
        "target_modules": sorted(factors),
    }


def lora_state_dict(
    base: UNet2DConditionModel, factors: dict[str, tuple[torch.Tensor, torch.Tensor]], rank: int
) -> dict[str, torch.Tensor]:
    """The UNet LoRA state dict (peft names, float32), built through peft's own layers so its
    names and shapes are those `load_lora_weights` expects."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    config = lora_config(factors, rank)
    base.add_adapter(LoraConfig(**config))  # type: ignore[no-untyped-call]
    with torch.no_grad():
        for name, (up, down) in factors.items():
            layer = base.get_submodule(name)
            lora_a = layer.lora_A["default"].weight  # type: ignore[index, union-attr]
            lora_b = layer.lora_B["default"].weight  # type: ignore[index, union-attr]
            lora_a.copy_(down.reshape(lora_a.shape).to(lora_a.dtype))
            lora_b.copy_(up.reshape(lora_b.shape).to(lora_b.dtype))
    state = get_peft_model_state_dict(base)
    expected = 2 * len(factors)
    if len(state) != expected:
        raise RuntimeError(f"peft gave {len(state)} LoRA tensors for {expected} factors")
    return {key: state[key].detach().float().contiguous() for key in sorted(state)}


def build_outline_lora(folder: Path, base: Path, finetune: Path, rank: int = RANK) -> Path:
    """Extract (once) the outline fine-tune's UNet change as a LoRA file in `folder`.

    Rank 16: on 8 scene prompts (EN/ZH) at 64×64, 20 PNDM steps, guidance 2, seeds 0…7, one
    thread, base + LoRA at weight 1.0 is a mean 1.2 levels (of 255) per pixel channel from the
    fine-tune's renders (rank 4: 5.0, rank 8: 2.5; base alone: 12.4) in a 1.4 MB file (the UNet
    is 4.0 MB).

    No adapter metadata goes into the file: safetensors writes a header's metadata map in an
    order that changes from process to process, so two entries (diffusers' "format" and its
    "lora_adapter_metadata") would make the bytes differ on every rebuild. One rank and scale 1
    everywhere is what diffusers infers without it.
    """

    def write(target: Path) -> None:
        with _one_thread():
            unet = UNet2DConditionModel.from_pretrained(Path(base) / "unet")
            tuned = UNet2DConditionModel.from_pretrained(Path(finetune) / "unet")
            factors, _ = lora_factors(unet, tuned, rank)
            state = lora_state_dict(unet, factors, rank)
        StableDiffusionPipeline.save_lora_weights(
            target,
            unet_lora_layers=state,  # type: ignore[arg-type]
            weight_name=LORA_FILE,
            safe_serialization=True,
        )

    return build_atomically(Path(folder), LORA_FILE, write)
