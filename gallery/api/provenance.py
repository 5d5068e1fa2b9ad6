"""POST /provenance: the "Check a picture" report (gallery.provenance) as JSON."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, File, Router, Schema, Status
from ninja.files import UploadedFile

from engine.uploads import UploadRejected
from gallery import ratelimit
from gallery.api.schemas import Errors, Message
from gallery.provenance import picture_check, picture_check_limits
from generator.i18n import translated

router = Router(tags=["provenance"])


class CredentialsOut(Schema):
    state: str = Field(
        description="trusted (a signer this site recognizes), valid (intact, signer unknown), "
        "invalid"
    )
    signer: str = Field(description="the signing certificate's common name")
    issuer: str = Field(description="the signing certificate's organization")
    serial_number: str = Field(description="the signing certificate's serial (decimal)")
    generator: str
    action: str = Field(description="the first C2PA action, e.g. c2pa.created")
    digital_source_type: str = Field(description="IPTC digital source type of that action")
    ingredients: list[dict[str, Any]]
    record: int | None = Field(description="the record Seedbank's signed assertion names")
    problems: list[str] = Field(description="what failed validation")


class MatchOut(Schema):
    id: int
    how: str = Field(description="pixels (identical decoded pixels) or near-duplicate (CLIP)")
    cosine: float | None = Field(description="CLIP cosine of a near-duplicate")


class ReproductionOut(Schema):
    record: int | None
    verdict: str = Field(description="bit-identical, visually-identical, differs or failed")
    checked_at: str | None


class ProvenanceReport(Schema):
    media_type: str
    width: int
    height: int
    pixel_sha256: str = Field(description="sha256 of the decoded RGB pixels")
    signed_by_this_site: bool = Field(
        description="intact Content Credentials signed with one of this site's certificates "
        "(current or rotated out)"
    )
    tampered: bool = Field(description="the picture changed after it was signed")
    credentials: CredentialsOut | None = Field(description="the active C2PA manifest, if any")
    credentials_error: str = Field(description="a manifest is there but cannot be read")
    xmp_digital_source_type: str | None
    in_archive: str | None = Field(
        description="pixels, near-duplicate, or null (not among the records you may see)"
    )
    matches: list[MatchOut]
    near_duplicate_bound: float | None = Field(
        description="the CLIP cosine a near-duplicate reaches (when they were looked for)"
    )
    near_duplicates_error: str
    recipe: dict[str, Any] | None
    recipe_source: str | None = Field(
        description="credentials (our signed assertion), record (the match's), or embedded "
        "(another tool's metadata: A1111, ComfyUI, InvokeAI…)"
    )
    embedded_recipe_error: str
    reproduction: ReproductionOut | None = Field(
        description="the latest verdict of re-rendering the matched record"
    )


@router.post(
    "/provenance",
    response={200: ProvenanceReport, 400: Errors, 429: Message},
    url_name="api_provenance",
    summary="Check a picture: Content Credentials, whether this archive holds it, its recipe",
)
def provenance(request: HttpRequest, picture: File[UploadedFile]) -> Any:  # type: ignore[type-arg]
    """Multipart upload of one PNG, JPEG or WebP (the image search upload's limits). Nothing is
    stored; no session or CSRF token is needed."""
    if refused := ratelimit.picture_check_refused(request, as_json=True):
        return refused
    data = picture.read(picture_check_limits()["max_bytes"] + 1)
    if not data:
        return Status(400, {"errors": {"picture": ["The submitted file is empty."]}})
    try:
        check = picture_check(data=data, viewer=request.user)
    except UploadRejected as exc:
        return Status(400, {"errors": {"picture": [translated(exc.args[0])]}})
    return check.as_dict()
