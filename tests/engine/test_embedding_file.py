"""The shipped textual-inversion embedding (engine.training.embedding): A1111's layout, and the
bytes its training produced.

Read with safetensors alone: A1111 and diffusers read nothing else from the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file

EMBEDDING = (
    Path(__file__).resolve().parents[2]
    / "models"
    / "seedbank-scenes-diamond-embedding"
    / "sbk-diamond.safetensors"
)
# What `python -m engine.training.embedding` wrote (one CPU thread); retraining must match it.
SHA256 = "bb45e6c907b57a4d2e54b85bfe3abf2310a9e29286e065136a1e5cc27ebbee11"
HIDDEN = 64  # the scene SD model's text encoder width


def test_the_file_is_an_a1111_embedding_of_one_finite_vector() -> None:
    tensors = load_file(str(EMBEDDING))
    assert list(tensors) == ["emb_params"]
    vector = tensors["emb_params"]
    assert vector.shape == (1, HIDDEN)
    assert vector.dtype == torch.float32
    assert bool(torch.isfinite(vector).all())
    assert float(vector.norm()) > 0


def test_the_file_is_the_bytes_training_produced() -> None:
    assert hashlib.sha256(EMBEDDING.read_bytes()).hexdigest() == SHA256
