"""Django-free CLIP embeddings for search: images and texts into one normalised vector space.

A model folder holds `open_clip_config.json` (open_clip's hub layout: `model_cfg`,
`preprocess_cfg`, plus our `model_name`) and one weights file. The same loader serves the tiny
offline CLIP and real checkpoints exported by open_clip, so nothing here is tiny-specific.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
from PIL import Image

from engine.torch_compat import ensure_torchvision

ensure_torchvision()

import open_clip  # noqa: E402
from open_clip import factory  # noqa: E402
from open_clip.transform import PreprocessCfg, image_transform_v2  # noqa: E402

CONFIG_FILE = "open_clip_config.json"
# open_clip's own preference when a hub folder holds several weight files.
WEIGHT_FILES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
)
_BATCH = 64  # bounds peak memory when re-indexing many images at once

Preprocess = Callable[[Image.Image], torch.Tensor]
Tokenizer = Callable[..., torch.Tensor]


class ClipModel(Protocol):
    """What search needs of an open_clip model (CLIP, CustomTextCLIP and CoCa all fit)."""

    def encode_image(self, image: torch.Tensor) -> torch.Tensor: ...

    def encode_text(self, text: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class EmbedderInfo:
    model_name: str  # e.g. "seedbank-tiny-clip" (from open_clip_config.json)
    dim: int


def load(weights_dir: str) -> tuple[ClipModel, Preprocess, Tokenizer, EmbedderInfo]:
    """Model, image preprocess, tokenizer and identity for a folder; loaded once per process."""
    return _load(str(Path(weights_dir).resolve()))


@functools.lru_cache(maxsize=2)
def _load(weights_dir: str) -> tuple[ClipModel, Preprocess, Tokenizer, EmbedderInfo]:
    folder = Path(weights_dir)
    config = _read_config(folder)
    name = str(config.get("model_name") or folder.name)
    model_cfg = config["model_cfg"] if "model_cfg" in config else _flat_model_cfg(config)
    # Registered under its name so open_clip.get_tokenizer(name) finds the same text settings.
    factory._MODEL_CONFIGS[name] = json.loads(json.dumps(model_cfg))
    model = open_clip.create_model(
        name,
        pretrained=str(_weights_file(folder)),  # a file path: loaded strictly, no download
        force_preprocess_cfg=config.get("preprocess_cfg") or None,
    )
    model.eval()
    preprocess = image_transform_v2(
        PreprocessCfg(**open_clip.get_model_preprocess_cfg(model)), is_train=False
    )
    tokenizer = open_clip.get_tokenizer(name)
    info = EmbedderInfo(model_name=name, dim=int(model_cfg["embed_dim"]))
    return cast(ClipModel, model), preprocess, tokenizer, info


def info(weights_dir: str) -> EmbedderInfo:
    return load(weights_dir)[3]


def embed_images(weights_dir: str, images: Sequence[Image.Image]) -> np.ndarray:
    """(n, dim) float32, each row of unit length."""
    model, preprocess, _, embedder = load(weights_dir)
    if not images:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    chunks = []
    with torch.no_grad():
        for start in range(0, len(images), _BATCH):
            batch = torch.stack(
                [preprocess(image.convert("RGB")) for image in images[start : start + _BATCH]]
            )
            chunks.append(model.encode_image(batch))
    return _normalised(torch.cat(chunks))


def embed_texts(weights_dir: str, texts: Sequence[str]) -> np.ndarray:
    """(n, dim) float32, each row of unit length."""
    model, _, tokenizer, embedder = load(weights_dir)
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    chunks = []
    with torch.no_grad():
        for start in range(0, len(texts), _BATCH):
            chunks.append(model.encode_text(tokenizer(list(texts[start : start + _BATCH]))))
    return _normalised(torch.cat(chunks))


def _normalised(features: torch.Tensor) -> np.ndarray:
    # Unit rows make cosine similarity an inner product, which is what pgvector indexes compare.
    features = torch.nn.functional.normalize(features.float(), dim=-1)
    return features.cpu().numpy().astype(np.float32, copy=False)


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"No {CONFIG_FILE} in {folder}: not an open_clip model folder")
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return config


def _flat_model_cfg(config: dict[str, Any]) -> dict[str, Any]:
    # Older exports put the model config at the top level beside our extra keys.
    return {k: v for k, v in config.items() if k not in ("model_name", "preprocess_cfg")}


def _weights_file(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"No open_clip weights in {folder}; expected one of {WEIGHT_FILES}")
