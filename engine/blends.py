"""Weighted blends of two diffusers folders: alpha * A + (1 - alpha) * B, tensor by tensor.

Django-free. A blend is stored as its definition (A, B, alpha) as well as its files, and the
archive promises that the files can be rebuilt from the definition: same inputs, same bytes,
same digest. So every step here is chosen to be deterministic:

- arithmetic in float32 (float64 stays float64) as separate multiply and add kernels, each
  correctly rounded by IEEE 754, so no SIMD width or fused multiply-add changes a bit; then a
  cast back to B's stored dtype;
- alpha 0 and 1 copy B's or A's tensors as they are, so the endpoints are exact (a computed
  0 * A + 1 * B can flip the sign of a zero);
- tensors written in sorted key order, with safetensors metadata of exactly {"format": "pt"}
  (what save_pretrained writes): safetensors serialises a metadata map with several keys in a
  different order in each process, so any extra keys would make the bytes vary;
- every other file (configs, tokenizer, scheduler, model_index.json) is B's, byte for byte.

The result is written into a temporary sibling folder and renamed into place, so a reader never
sees a half-written model, and a crash leaves no folder that looks finished.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.weights import open_permissions

# The components whose weights are blended; everything else (tokenizer, scheduler) comes from B.
BLENDED_COMPONENTS = ("unet", "vae", "text_encoder")
WEIGHTS_SUFFIX = ".safetensors"
# Other formats of a component's weights: copied from B they would hold B's unblended tensors,
# and a loader that preferred them would silently render B.
_OTHER_WEIGHT_SUFFIXES = frozenset({".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".onnx"})
_METADATA = {"format": "pt"}


def materialise_blend(a_path: Path, b_path: Path, alpha: float, out_path: Path) -> Path:
    """Write alpha * A + (1 - alpha) * B as a diffusers folder at `out_path`; return it.

    A and B must be diffusers folders of the same architecture: for unet, vae and text_encoder
    the same weight files, keys, shapes and config values (else ValueError naming the first
    difference). Configs, tokenizer and scheduler are copied from B. `out_path` must not exist.
    """
    a_root, b_root, out = Path(a_path), Path(b_path), Path(out_path)
    if not (isinstance(alpha, int | float) and math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be a number from 0 to 1, got {alpha!r}.")
    plan = blend_plan(a_root, b_root)
    if out.exists():
        raise FileExistsError(f"{out} already exists; a blend is never written over a folder.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.blending-", dir=out.parent))
    try:
        _copy_b(b_root, tmp, skip=set(plan))
        for relative in plan:
            _blend_file(a_root / relative, b_root / relative, float(alpha), tmp / relative)
        open_permissions(tmp)
        os.rename(tmp, out)  # fails if a racing writer created `out`: theirs stays
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def blend_plan(a_root: Path, b_root: Path) -> list[Path]:
    """The weight files to blend (relative paths), after checking that A and B can be blended.

    Reads only configs and safetensors headers, so a mismatch is found before any arithmetic.
    """
    for root, label in ((a_root, "A"), (b_root, "B")):
        if not (root / "model_index.json").is_file():
            raise ValueError(f"{label} ({root}) is not a diffusers folder (no model_index.json).")
    plan: list[Path] = []
    for component in BLENDED_COMPONENTS:
        a_dir, b_dir = a_root / component, b_root / component
        for folder, label in ((a_dir, "A"), (b_dir, "B")):
            if not folder.is_dir():
                raise ValueError(f"{label} has no {component} folder ({folder}).")
        _compare_configs(a_dir / "config.json", b_dir / "config.json", component)
        b_files = sorted(p.name for p in b_dir.iterdir() if p.name.endswith(WEIGHTS_SUFFIX))
        a_files = sorted(p.name for p in a_dir.iterdir() if p.name.endswith(WEIGHTS_SUFFIX))
        if not b_files:
            raise ValueError(
                f"B's {component} has no {WEIGHTS_SUFFIX} weights; only safetensors are blended."
            )
        if a_files != b_files:
            raise ValueError(
                f"{component} weight files differ: A has {a_files}, B has {b_files} "
                "(differently sharded or saved checkpoints cannot be blended file by file)."
            )
        for name in b_files:
            _compare_headers(a_dir / name, b_dir / name, f"{component}/{name}")
            plan.append(Path(component) / name)
    return plan


def blend_tensor(a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    """alpha * a + (1 - alpha) * b in B's dtype (see the module notes on determinism)."""
    if alpha == 0.0:
        return b
    if alpha == 1.0:
        return a.to(b.dtype)
    compute = torch.promote_types(torch.float32, b.dtype)
    weight_a = torch.tensor(alpha, dtype=compute)
    weight_b = torch.tensor(1.0 - alpha, dtype=compute)
    return (a.to(compute) * weight_a + b.to(compute) * weight_b).to(b.dtype)


def _compare_configs(a_file: Path, b_file: Path, component: str) -> None:
    # Equal shapes do not make equal architectures (head count, norm groups, activation): A's
    # tensors are read through B's config, so the values both configs state must agree. Keys
    # starting with "_" are bookkeeping (library version, source path); a key only one side has
    # is a default that one library version writes out and another does not.
    configs = []
    for file, label in ((a_file, "A"), (b_file, "B")):
        try:
            configs.append(json.loads(file.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            raise ValueError(f"{label}'s {component}/config.json is unreadable: {error}") from None
    a_config, b_config = configs
    for key in sorted(set(a_config) & set(b_config)):
        if not key.startswith("_") and a_config[key] != b_config[key]:
            raise ValueError(
                f"{component} config differs at {key!r}: A has {a_config[key]!r}, "
                f"B has {b_config[key]!r}."
            )


def _compare_headers(a_file: Path, b_file: Path, label: str) -> None:
    with safe_open(str(a_file), "pt") as a, safe_open(str(b_file), "pt") as b:
        a_keys, b_keys = set(a.keys()), set(b.keys())
        if a_keys != b_keys:
            only_a, only_b = sorted(a_keys - b_keys), sorted(b_keys - a_keys)
            first = f"{only_a[0]!r} only in A" if only_a else f"{only_b[0]!r} only in B"
            raise ValueError(
                f"{label}: different tensors ({first}; {len(only_a)} only in A, "
                f"{len(only_b)} only in B)."
            )
        for key in sorted(b_keys):
            a_slice, b_slice = a.get_slice(key), b.get_slice(key)
            a_shape, b_shape = list(a_slice.get_shape()), list(b_slice.get_shape())
            if a_shape != b_shape:
                raise ValueError(f"{label}: {key!r} has shape {a_shape} in A, {b_shape} in B.")
            a_float = _is_float_dtype(a_slice.get_dtype())
            if a_float != _is_float_dtype(b_slice.get_dtype()):
                raise ValueError(
                    f"{label}: {key!r} is {a_slice.get_dtype()} in A, {b_slice.get_dtype()} in B."
                )


def _is_float_dtype(name: str) -> bool:
    # safetensors names: F64 F32 F16 BF16 F8_E4M3 ... vs I64 U8 BOOL.
    return name.startswith(("F", "BF"))


def _blend_file(a_file: Path, b_file: Path, alpha: float, out_file: Path) -> None:
    blended: dict[str, torch.Tensor] = {}
    with safe_open(str(a_file), "pt") as a, safe_open(str(b_file), "pt") as b:
        for key in sorted(b.keys()):
            b_tensor = b.get_tensor(key)
            a_tensor = a.get_tensor(key)
            if b_tensor.is_floating_point():
                blended[key] = blend_tensor(a_tensor, b_tensor, alpha).contiguous()
            elif torch.equal(a_tensor, b_tensor):
                # Integer buffers (position ids) are indices, not weights: they must agree.
                blended[key] = b_tensor.contiguous()
            else:
                raise ValueError(f"{out_file.parent.name}: non-float tensor {key!r} differs.")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    save_file(blended, str(out_file), metadata=dict(_METADATA))


def _copy_b(b_root: Path, target: Path, *, skip: set[Path]) -> None:
    for file in _walk_files(b_root):
        relative = file.relative_to(b_root)
        if relative in skip:
            continue
        if relative.parts[0] in BLENDED_COMPONENTS and (
            file.suffix in _OTHER_WEIGHT_SUFFIXES or file.name.endswith(WEIGHTS_SUFFIX)
        ):
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        # Bytes only: B's timestamps and modes are not part of the blend (nor of its digest).
        shutil.copyfile(file, destination)


def _walk_files(root: Path) -> Iterator[Path]:
    # Sorted so that any failure is the same on every run; symlinks (a hub cache snapshot) are
    # followed and copied as files.
    return iter(sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.as_posix()))
