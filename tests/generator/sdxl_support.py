"""The tiny SDXL base and refiner as the archive holds them: built once into the models folder
(byte-identical on every machine) and registered through `model_add`, as a person would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from engine.tiny_sdxl import build_tiny_sdxl
from generator.models import ModelVersion
from generator.services.model_versions import model_add


@dataclass(frozen=True)
class TinySdxl:
    base: ModelVersion
    refiner: ModelVersion


def tiny_sdxl_folders() -> tuple[Path, Path]:
    """(base, refiner) folders under SEEDBANK_MODELS_DIR; built when missing."""
    folder = Path(settings.SEEDBANK_MODELS_DIR)
    return (
        build_tiny_sdxl(folder / "tiny-sdxl", seed=0),
        build_tiny_sdxl(folder / "tiny-sdxl-refiner", seed=0, variant="refiner"),
    )


def tiny_sdxl_register() -> TinySdxl:
    base, refiner = tiny_sdxl_folders()
    return TinySdxl(
        base=model_add(path=base, name="tiny-sdxl", revision="seed0", native_size=64),
        refiner=model_add(path=refiner, name="tiny-sdxl-refiner", revision="seed0", native_size=64),
    )
