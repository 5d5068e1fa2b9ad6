"""Is the archive whole? Rows whose files are gone, files no row names, and files whose bytes
no longer give the digest their row promises (`manage.py check_archive`).

Pictures are checked by the digest of their decoded pixels (what records pin), model folders by
engine.weights' digest, resources by the sha256 of the file. `quick` only looks for files,
which reads no bytes: the full check decodes every picture and reads every weight.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from PIL import Image as PILImage

from engine.png_files import pixel_sha256
from engine.resources import file_sha256
from engine.weights import MODEL_INDEX, files_digest
from generator.selectors.stored_files import (
    images_without_pixels,
    media_references,
    model_folders,
    pixel_digests,
    pixel_digests_count,
    resource_files,
)

MISSING, STRAY, CHANGED = "missing", "stray", "changed"
# (phase, items just done, items in the phase)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Problem:
    kind: str  # MISSING (a row without its file), STRAY (a file without a row), CHANGED
    subject: str  # the file, or the row
    detail: str

    def __str__(self) -> str:
        return f"{self.kind:8} {self.subject}: {self.detail}"


def archive_check(*, quick: bool = False, progress: Progress | None = None) -> list[Problem]:
    media = Path(settings.MEDIA_ROOT)
    problems: list[Problem] = []
    named: set[str] = set()
    for reference in media_references():
        named.add(reference.name)
        if not (media / reference.name).is_file():
            problems.append(Problem(MISSING, reference.name, f"{reference.what} names it"))
    problems += [
        Problem(MISSING, f"generator_image {pk}", "ready, not evicted, and no image file")
        for pk in images_without_pixels()
    ]
    problems += _strays(media, named)
    problems += _models(quick=quick, progress=progress)
    problems += _resources(quick=quick, progress=progress)
    if not quick:
        problems += _pixels(media, progress=progress)
    return problems


def _strays(media: Path, named: set[str]) -> list[Problem]:
    strays = []
    for folder, subfolders, files in os.walk(media):
        subfolders.sort()
        for file in sorted(files):
            name = (Path(folder) / file).relative_to(media).as_posix()
            if name not in named:
                strays.append(Problem(STRAY, name, "no row names this file"))
    return strays


def _models(*, quick: bool, progress: Progress | None) -> list[Problem]:
    problems = []
    folders = model_folders()
    for folder in folders:
        path = Path(folder.path)
        if not (path / MODEL_INDEX).is_file():
            problems.append(Problem(MISSING, folder.path, f"model {folder.label}: no folder"))
        elif not quick and (digest := files_digest(path)) != folder.digest:
            detail = f"model {folder.label}: weights digest {digest}, recorded {folder.digest}"
            problems.append(Problem(CHANGED, folder.path, detail))
        if progress:
            progress("models", 1, len(folders))
    return problems


def _resources(*, quick: bool, progress: Progress | None) -> list[Problem]:
    problems = []
    resources = resource_files()
    for resource in resources:
        path = Path(resource.path)
        if not path.is_file():
            problems.append(Problem(MISSING, resource.path, f"{resource.label}: no file"))
        elif quick and resource.size and path.stat().st_size != resource.size:
            detail = f"{resource.label}: {path.stat().st_size} bytes, recorded {resource.size}"
            problems.append(Problem(CHANGED, resource.path, detail))
        elif not quick and (digest := file_sha256(path)) != resource.digest:
            detail = f"{resource.label}: sha256 {digest}, recorded {resource.digest}"
            problems.append(Problem(CHANGED, resource.path, detail))
        if progress:
            progress("resources", 1, len(resources))
    return problems


def _pixels(media: Path, *, progress: Progress | None) -> list[Problem]:
    problems = []
    total = pixel_digests_count()
    for stored in pixel_digests():
        path = media / stored.name
        if path.is_file():  # a missing one is reported already
            try:
                with PILImage.open(path) as decoded:
                    digest = _digest(decoded, stored.kind)
            except OSError as error:
                digest = f"unreadable ({error})"
            if digest != stored.pixel_sha256:
                detail = f"{stored.what}: pixels {digest}, recorded {stored.pixel_sha256}"
                problems.append(Problem(CHANGED, stored.name, detail))
        if progress:
            progress("pixels", 1, total)
    return problems


def _digest(decoded: PILImage.Image, kind: str) -> str:
    if kind == "image":
        return pixel_sha256(decoded)
    # An uploaded init image or mask: its mode and size are hashed with its pixels
    # (generator.services.records.source_image_store).
    mode = "L" if kind == "mask" else "RGB"
    normalised = decoded.convert(mode)
    header = f"{mode}:{normalised.width}x{normalised.height}:".encode()
    return hashlib.sha256(header + normalised.tobytes()).hexdigest()
