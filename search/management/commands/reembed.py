"""Build vectors for another CLIP model beside the active ones, then switch to it atomically.

Queries keep using the old model's vectors until the switch, and only the new model's after it:
results never mix vector spaces. Interrupted? Run it again: it resumes.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from generator.selectors.records import images_public
from search.services import embedding_model_activate, embedding_model_register, embeddings_build


class Command(BaseCommand):
    help = "Re-embed every record with another CLIP model, then make it the active one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", required=True, help="folder with open_clip_config.json")
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--no-switch", action="store_true", help="build vectors only")

    def handle(
        self, *args: object, model: str, batch_size: int, no_switch: bool, **_: object
    ) -> None:
        path = Path(model).resolve()
        if not (path / "open_clip_config.json").is_file():
            raise CommandError(f"{path} has no open_clip_config.json")
        try:
            registered = embedding_model_register(path=path)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        with tqdm(total=images_public().count(), desc=f"embedding with {registered}") as bar:
            embeddings_build(model=registered, batch_size=batch_size, progress=bar.update)
        if no_switch:
            self.stdout.write(f"Vectors for {registered} built; the active model is unchanged.")
            return
        embedding_model_activate(model=registered)
        # Records rendered while we were building were embedded with the old model only.
        late = embeddings_build(model=registered, batch_size=batch_size)
        self.stdout.write(
            f"{registered} is now the active model ({late} late record(s) caught up)."
        )
