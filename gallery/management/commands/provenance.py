"""manage.py provenance FILE…: the "Check a picture" report (gallery.provenance) for each file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from engine.uploads import UploadRejected
from gallery.provenance import PictureCheck, picture_check, picture_check_limits
from generator.i18n import translated


class _Operator:
    """Whoever runs manage.py sees what staff see (hidden records included)."""

    is_staff = True
    is_authenticated = False
    pk = None


class Command(BaseCommand):
    help = (
        "Check pictures: their Content Credentials (signed by this site? tampered?), whether "
        "the archive holds them (same pixels, else CLIP near-duplicates), their recipe and "
        "whether Seedbank reproduced it. Exits 1 when a file cannot be read."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--json", action="store_true", help="one JSON object per line")

    def handle(self, *args: Any, **options: Any) -> None:
        translation.activate("en")
        failed = 0
        limit = picture_check_limits()["max_bytes"]
        for path in options["files"]:
            try:
                with path.open("rb") as handle:
                    data = handle.read(limit + 1)
                check = picture_check(data=data, viewer=_Operator())
            except (OSError, UploadRejected) as exc:
                failed += 1
                reason = translated(exc.args[0]) if isinstance(exc, UploadRejected) else str(exc)
                if options["json"]:
                    self.stdout.write(json.dumps({"file": str(path), "error": reason}))
                else:
                    self.stderr.write(f"{path}: {reason}")
                continue
            if options["json"]:
                document = {"file": str(path), **check.as_dict()}
                self.stdout.write(json.dumps(document, ensure_ascii=False, default=str))
            else:
                self.stdout.write(_human(path, check))
        if failed:
            raise CommandError(f"{failed} of {len(options['files'])} files could not be read.")


def _human(path: Path, check: PictureCheck) -> str:
    report = check.report
    credentials = report.credentials
    lines = [f"{path}", f"  picture       {report.media_type}, {report.width}×{report.height}"]
    lines.append(f"  pixel sha256  {report.pixel_sha256}")
    if credentials is None:
        lines.append(
            f"  credentials   cannot be read: {report.credentials_error}"
            if report.credentials_error
            else "  credentials   none"
        )
    else:
        if report.tampered:
            verdict = "TAMPERED: the picture changed after it was signed"
        elif check.signed_by_this_site:
            verdict = "signed by this site, intact"
        else:
            verdict = f"{credentials.state}, not signed by this site"
        lines.append(f"  credentials   {verdict}")
        lines.append(
            f"  signer        {credentials.signer or '?'} ({credentials.issuer or '?'}), "
            f"serial {credentials.serial_number or '?'}"
        )
        if credentials.action:
            lines.append(f"  action        {credentials.action} {credentials.digital_source_type}")
        for problem in credentials.problems:
            lines.append(f"  problem       {problem}")
    if report.xmp_digital_source_type:
        lines.append(f"  XMP source    {report.xmp_digital_source_type}")
    if check.in_archive == "pixels":
        ids = ", ".join(f"#{m.image.pk}" for m in check.matches)
        lines.append(f"  in archive    yes, same pixels: {ids}")
    elif check.in_archive:
        near = ", ".join(f"#{m.image.pk} (cosine {m.cosine:.4f})" for m in check.matches)
        lines.append(f"  in archive    near-duplicates (≥ {check.near_duplicate_bound}): {near}")
    else:
        lines.append(
            "  in archive    no"
            + (f" ({check.near_duplicates_error})" if check.near_duplicates_error else "")
        )
    if check.recipe is not None:
        lines.append(f"  recipe        from {check.recipe_source}:")
        text = json.dumps(check.recipe, ensure_ascii=False, indent=2, default=str)
        lines.extend(f"    {line}" for line in text.splitlines())
    else:
        lines.append("  recipe        none found")
    last = check.reproduction
    if last is not None:
        when = last.finished_at.isoformat() if last.finished_at else "?"
        lines.append(f"  reproduced    {last.verdict} ({when})")
    elif check.record is not None:
        lines.append("  reproduced    not yet")
    return "\n".join(lines)
