"""Models, records and render jobs. One concept per module; imported here for Django."""

from generator.models.jobs import RenderJob
from generator.models.model_versions import ModelVersion
from generator.models.prices import DevicePrice
from generator.models.records import Image, ImageEnvironment, SourceImage
from generator.models.reproductions import Reproduction
from generator.models.resources import Resource

__all__ = [
    "DevicePrice",
    "Image",
    "ImageEnvironment",
    "ModelVersion",
    "RenderJob",
    "Reproduction",
    "Resource",
    "SourceImage",
]
