"""Make torchvision importable beside a CPU-only torch.

The torchvision wheel that pip picks beside the local CPU torch links CUDA libraries; its `_C`
extension fails to load, and its pure-Python meta registrations then die with
"operator torchvision::nms does not exist". open_clip and diffusers (through transformers' image
processors) import torchvision, so without this neither loads. GPU hosts install a matching
torchvision and never take the fallback path.

Call `ensure_torchvision()` before importing diffusers or open_clip.
"""

from __future__ import annotations

import sys

import torch

_MISSING_OP = "operator torchvision::nms does not exist"

# Kept referenced for the life of the process: dropping the Library deregisters its schemas.
_SCHEMAS: torch.library.Library | None = None


def ensure_torchvision() -> None:
    """Import torchvision, defining its missing op schemas only when the real import fails."""
    # A failed import removes the top-level module, so its presence means a finished import.
    if "torchvision" in sys.modules:
        return
    try:
        import torchvision
    except RuntimeError as exc:
        if _MISSING_OP not in str(exc):
            raise
        _define_schemas()
        _forget_partial_import()
        import torchvision  # noqa: F401


def _define_schemas() -> None:
    """Declare the schemas torchvision's meta kernels register against (ops stay unusable)."""
    global _SCHEMAS
    if _SCHEMAS is not None:
        return
    library = torch.library.Library("torchvision", "DEF")
    for name in ("nms", "qnms"):
        library.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _SCHEMAS = library


def _forget_partial_import() -> None:
    # The failed import left half-initialised submodules; importing again must start clean.
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
