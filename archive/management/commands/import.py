"""manage.py import PATH…: recipes from other tools' images, folders, zips and tables."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from archive.selectors import import_problems, import_problems_count
from archive.services.imports import import_limits, import_rows, import_run_start
from engine.imports.discover import rows
from engine.imports.tables import FIELDS, parse_mapping

SHOWN_PROBLEMS = 20


class Command(BaseCommand):
    help = (
        "Import recipes: image files (A1111, ComfyUI, InvokeAI, NovelAI, Fooocus, SwarmUI, "
        "Seedbank), folders and zips of them, CSV / JSON Lines tables, Lexica JSON and "
        "DiffusionDB parquet. Importing again adds nothing and resumes an interrupted import."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FIELD=COLUMN[.KEY…]",
            help=f"where a CSV/JSONL field is (fields: {', '.join(FIELDS)}); "
            "e.g. --map seed=params.seed reaches into a JSON column",
        )
        parser.add_argument(
            "--no-render",
            action="store_true",
            help="keep recipes without a picture as 'needs model' instead of queueing renders",
        )

    def handle(self, *args: object, **options: object) -> None:
        try:
            mapping = parse_mapping(options["map"])  # type: ignore[arg-type]
        except ValueError as error:
            raise CommandError(str(error)) from None
        paths: list[Path] = options["paths"]  # type: ignore[assignment]
        run = import_run_start(sources=[str(path) for path in paths], mapping=mapping)
        with tqdm(desc=f"import #{run.pk}", unit="row") as bar:
            run = import_rows(
                run=run,
                rows=rows(paths, mapping=mapping, limits=import_limits()),
                render_missing=not options["no_render"],
                progress=bar.update,
            )
        self.stdout.write(
            f"import #{run.pk}: read {run.read}: imported {run.imported}, queued for rendering "
            f"{run.queued}, needs model {run.needs_model}, needs resource {run.needs_resource}, "
            f"incomplete {run.incomplete}, "
            f"duplicates {run.duplicates} (changed {run.changed}), rejected {run.rejected}"
        )
        for problem in import_problems(run=run, limit=SHOWN_PROBLEMS):
            self.stdout.write(f"  {problem.kind}: {problem.location}: {problem.reason}")
        more = import_problems_count(run=run) - SHOWN_PROBLEMS
        if more > 0:
            self.stdout.write(f"  … and {more} more: the import run's page in the admin")
