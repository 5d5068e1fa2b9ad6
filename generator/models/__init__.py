"""Models, records and render jobs. One concept per module; imported here for Django."""

from generator.models.jobs import RenderJob
from generator.models.model_versions import ModelVersion
from generator.models.prices import DevicePrice
from generator.models.records import (
    LORA_HEAD_LENGTH,
    Image,
    ImageEnvironment,
    LoraHeads,
    SourceImage,
)
from generator.models.reproductions import Reproduction
from generator.models.resources import Resource

__all__ = [
    "LORA_HEAD_LENGTH",
    "DevicePrice",
    "Image",
    "ImageEnvironment",
    "LoraHeads",
    "ModelVersion",
    "RenderJob",
    "Reproduction",
    "Resource",
    "SourceImage",
]
