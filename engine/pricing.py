"""Default device prices and cost arithmetic (Django-free).

Defaults come from the seed's AWS on-demand table (2022), per GPU: the cheapest single-GPU
instance of each kind, and p4d's 32.77 USD/h split over its 8 A100s. CPU rendering is priced at a
small general-purpose instance. Staff edit the live table in the admin (generator.DevicePrice).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

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
