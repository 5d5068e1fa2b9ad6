"""Checking a picture (#28): what an uploaded file says about itself (engine.provenance), set
against the archive. Reads only: the page, the API and `manage.py provenance` call it.

- Signed by this site: the Content Credentials validate against the roots of every chain the
  site has signed with, and the signing certificate's serial is one of those chains' (a key
  rotated out is still recognized; another signer under the same root is not).
- In this archive: a record the viewer may open with the same decoded pixels (sha256), else
  records that look the same to CLIP (search.selectors.picture_near_duplicates, each with its
  cosine). Hidden records are never revealed to visitors: they count as absent.
- The recipe: our signed assertion's, else the matched record's, else any tool's metadata.
- Reproduced: the latest finished reproduction verdict of the matched record.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from engine.provenance.reading import PictureReport, read_picture
from engine.uploads import open_upload
from gallery.forms.search import SEARCH_DECODE_SIDE
from generator.models import Image, Reproduction
from generator.selectors.model_versions import image_model_problem
from generator.selectors.records import image_detail, image_last_reproduction, images_with_pixels
from generator.services.signing import site_trust
from search.selectors import picture_near_duplicates

logger = logging.getLogger(__name__)

# How many near-duplicates a check lists (nearest first).
NEAR_DUPLICATES_SHOWN = 5


@dataclass(frozen=True)
class ArchiveMatch:
    image: Image
    how: str  # "pixels" (identical decoded pixels) | "near-duplicate" (CLIP)
    cosine: float | None  # CLIP cosine for a near-duplicate


@dataclass(frozen=True)
class PictureCheck:
    report: PictureReport
    signed_by_this_site: bool
    matches: list[ArchiveMatch]  # exact pixel matches, else near-duplicates
    near_duplicate_bound: float | None  # the cosine used, when near-duplicates were looked for
    near_duplicates_error: str  # CLIP could not be asked (no model): the check still answers
    claimed_record: Image | None  # the record our signed assertion names, if the viewer may see it
    recipe: dict[str, Any] | None
    recipe_source: str  # "credentials" | "record" | "embedded" | ""
    reproduction: Reproduction | None  # the latest verdict of `record`
    model_problem: str | None  # why `record` cannot be re-rendered here, if it cannot

    @property
    def record(self) -> Image | None:
        """The record the report is about: the best match, else the one the credentials name."""
        return self.matches[0].image if self.matches else self.claimed_record

    @property
    def in_archive(self) -> str:
        """ "pixels", "near-duplicate" or "" (not found among the records the viewer may see)."""
        return self.matches[0].how if self.matches else ""

    @property
    def can_verify(self) -> bool:
        """Whether a reproduction of `record` can be queued (its model is here)."""
        return self.record is not None and self.model_problem is None

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON (the API and `manage.py provenance --json`)."""
        report = self.report
        credentials = report.credentials
        last = self.reproduction
        return {
            "media_type": report.media_type,
            "width": report.width,
            "height": report.height,
            "pixel_sha256": report.pixel_sha256,
            "signed_by_this_site": self.signed_by_this_site,
            "tampered": report.tampered,
            "credentials": (
                {
                    "state": credentials.state,
                    "signer": credentials.signer,
                    "issuer": credentials.issuer,
                    "serial_number": credentials.serial_number,
                    "generator": credentials.generator,
                    "action": credentials.action,
                    "digital_source_type": credentials.digital_source_type,
                    "ingredients": list(credentials.ingredients),
                    "record": (credentials.recipe or {}).get("record"),
                    "problems": list(credentials.problems),
                }
                if credentials is not None
                else None
            ),
            "credentials_error": report.credentials_error,
            "xmp_digital_source_type": report.xmp_digital_source_type,
            "in_archive": self.in_archive or None,
            "matches": [
                {"id": match.image.pk, "how": match.how, "cosine": match.cosine}
                for match in self.matches
            ],
            "near_duplicate_bound": self.near_duplicate_bound,
            "near_duplicates_error": self.near_duplicates_error,
            "recipe": self.recipe,
            "recipe_source": self.recipe_source or None,
            "embedded_recipe_error": report.embedded_recipe_error,
            "reproduction": (
                {
                    "record": self.record.pk if self.record else None,
                    "verdict": last.verdict,
                    "checked_at": last.finished_at.isoformat() if last.finished_at else None,
                }
                if last is not None
                else None
            ),
        }


def picture_check_limits() -> dict[str, int]:
    """What a check reads: the upload byte limit, and the pixels image search decodes in the
    web process (a check decodes every pixel to hash them, JPEG included)."""
    return {
        "max_bytes": settings.SEEDBANK_UPLOAD_MAX_BYTES,
        "max_pixels": settings.SEEDBANK_SEARCH_UPLOAD_MAX_PIXELS,
    }


def picture_check(*, data: bytes, viewer: Any) -> PictureCheck:
    """Everything the archive can say about `data`. Raises engine.uploads.UploadRejected (args[0]
    an engine.messages.Message) for what is not a picture it reads, within the limits."""
    limits = picture_check_limits()
    anchors, serials = site_trust()
    report = read_picture(data, trust_anchors=anchors, **limits)
    credentials = report.credentials
    signed_here = (
        credentials is not None
        and credentials.state == "trusted"
        and credentials.serial_number in serials
    )
    claimed_record = None
    assertion = credentials.recipe if credentials is not None else None
    if signed_here and assertion and isinstance(assertion.get("record"), int):
        claimed_record = image_detail(image_id=assertion["record"], viewer=viewer)

    matches = [
        ArchiveMatch(image=image, how="pixels", cosine=None)
        for image in images_with_pixels(pixel_sha256=report.pixel_sha256, viewer=viewer)
    ]
    bound: float | None = None
    near_error = ""
    if not matches:
        try:
            # Decoded again, reduced for CLIP (it sees 224 pixels a side): read_picture keeps
            # no decoded image, and the limits were checked on the way in.
            picture = open_upload(io.BytesIO(data), min_side=SEARCH_DECODE_SIDE, **limits)
            likeness = picture_near_duplicates(
                picture=picture, viewer=viewer, limit=NEAR_DUPLICATES_SHOWN
            )
        except Exception:  # no CLIP model, or it failed: the rest of the report still stands
            logger.exception("a picture check could not look for near-duplicates")
            near_error = "Near-duplicates could not be looked for (the CLIP model is unavailable)."
        else:
            bound = likeness.bound
            matches = [
                ArchiveMatch(image=hit.image, how="near-duplicate", cosine=hit.vector_score)
                for hit in likeness.hits
            ]

    record = matches[0].image if matches else claimed_record
    recipe: dict[str, Any] | None = None
    source = ""
    if assertion and isinstance(assertion.get("recipe"), dict):
        recipe, source = assertion["recipe"], "credentials"
    elif record is not None:
        recipe, source = record.recipe_portable(), "record"
    elif report.embedded_recipe is not None:
        recipe, source = report.embedded_recipe, "embedded"
    return PictureCheck(
        report=report,
        signed_by_this_site=signed_here,
        matches=matches,
        near_duplicate_bound=bound,
        near_duplicates_error=near_error,
        claimed_record=claimed_record,
        recipe=recipe,
        recipe_source=source,
        reproduction=image_last_reproduction(image=record) if record is not None else None,
        model_problem=image_model_problem(image=record) if record is not None else None,
    )


__all__ = ["ArchiveMatch", "PictureCheck", "picture_check", "picture_check_limits"]
