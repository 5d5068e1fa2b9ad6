"""Default device prices and cost arithmetic (Django-free): what a job costs the GPU in
megapixel-steps, and what its seconds cost in dollars.

Defaults come from the seed's AWS on-demand table (2022), per GPU: the cheapest single-GPU
instance of each kind, and p4d's 32.77 USD/h split over its 8 A100s. CPU rendering is priced at a
small general-purpose instance. Staff edit the live table in the admin (generator.DevicePrice).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.recipe import Recipe

DEFAULT_DEVICE_PRICES: dict[str, tuple[str, str]] = {
    # name_contains: (USD per hour, where the figure comes from)
    "A100": ("4.0963", "p4d.24xlarge 32.77 USD/h / 8 GPUs"),
    "V100": ("3.06", "p3.2xlarge, 1 GPU"),
    "K80": ("0.90", "p2.xlarge, 1 GPU"),
    "A10G": ("1.624", "g5 single-GPU, low end of 1.6-16.2"),
    "T4": ("0.526", "g4dn.xlarge, 1 GPU"),
    "CPU": ("0.17", "assumption: a 4-vCPU general-purpose instance"),
}


def price_per_hour(device_name: str, prices: Iterable[tuple[str, Decimal]]) -> Decimal | None:
    """The price of the longest matching pattern ("A100" beats "A10"), or None if unpriced."""
    name = device_name.upper()
    matches = [(len(pattern), price) for pattern, price in prices if pattern.upper() in name]
    return max(matches)[1] if matches else None


def cost_usd(seconds: float, usd_per_hour: Decimal) -> Decimal:
    return (Decimal(str(seconds)) * usd_per_hour / Decimal(3600)).quantize(Decimal("0.000001"))


def megapixel_steps(*, width: int, height: int, images: int, steps: int) -> float:
    """The GPU work of `images` images of width x height denoised `steps` times: the unit of
    quotas, of the per-job cap and of the task time limit. Time per step grows at least with
    the pixels, so a 1024² image costs four 512² ones."""
    return width * height / 1e6 * images * steps


def recipe_megapixel_steps(recipe: Recipe) -> float:
    """A recipe's whole cost: its render, plus the hires pass at the larger size (as many steps
    as the first pass unless it names its own). img2img counts every step (an upper bound:
    strength skips some), as the time limit does."""
    cost = megapixel_steps(
        width=recipe.width, height=recipe.height, images=recipe.batch_size, steps=recipe.steps
    )
    if recipe.hires is not None:
        width, height = recipe.hires.size(recipe.width, recipe.height)
        steps = recipe.hires.steps or recipe.steps
        cost += megapixel_steps(width=width, height=height, images=recipe.batch_size, steps=steps)
    return cost
