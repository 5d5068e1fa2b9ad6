"""Where the trained scene models live in a models folder, and the digests they were trained to.

Light on purpose (no torch): the site checks the shipped folders before registering them.
"""

from __future__ import annotations

from pathlib import Path

CLIP_FOLDER = "seedbank-scenes-clip"
SD_FOLDER = "seedbank-scenes-sd"
OUTLINE_FOLDER = "seedbank-scenes-sd-outline"
FOLDERS = (CLIP_FOLDER, SD_FOLDER, OUTLINE_FOLDER)  # model folders: digest = weights_digest
# Add-on resources made from those models (engine.training.resources_build), one .safetensors
# file each; their digest in DIGESTS is that file's sha256, the identity peers hash.
OUTLINE_LORA_FOLDER = "seedbank-scenes-outline-lora"
VAE_V1_FOLDER = "seedbank-scenes-vae-v1"
VAE_FT_FOLDER = "seedbank-scenes-vae-ft"
# A textual-inversion embedding of a shape the scene model never saw (engine.training.embedding).
EMBEDDING_FOLDER = "seedbank-scenes-diamond-embedding"
RESOURCE_FOLDERS = (OUTLINE_LORA_FOLDER, VAE_V1_FOLDER, VAE_FT_FOLDER, EMBEDDING_FOLDER)
DIGESTS_FILE = "DIGESTS"
# The classifier-free guidance scale the scene SD model follows its prompts best at
# (bench/models.py); SD's usual 7.5 over-saturates a model this small. The demo renders with it.
GUIDANCE = 2.0


def read_digests(models: Path) -> dict[str, str]:
    """{model folder: weights digest} as `make models` wrote them (sha256sum's layout); the
    resource folders' lines are read_resource_digests'."""
    return {name: d for name, d in _digest_lines(models).items() if name not in RESOURCE_FOLDERS}


def read_resource_digests(models: Path) -> dict[str, str]:
    """{resource folder: sha256 of its one .safetensors file}, from the same DIGESTS file."""
    return {name: d for name, d in _digest_lines(models).items() if name in RESOURCE_FOLDERS}


def _digest_lines(models: Path) -> dict[str, str]:
    lines = (models / DIGESTS_FILE).read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split(maxsplit=1) for line in lines if line)}


def write_digests(models: Path, digests: dict[str, str]) -> None:
    (models / DIGESTS_FILE).write_text(
        "".join(f"{digest}  {name}\n" for name, digest in digests.items()), encoding="utf-8"
    )
