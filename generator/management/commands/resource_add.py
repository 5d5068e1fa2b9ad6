"""Register a LoRA, textual-inversion embedding or VAE file, pinned by its sha256."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator.models import Resource
from generator.services.resources import ResourceRefused, resource_add


class Command(BaseCommand):
    help = (
        "Register a resource file where it lies: a LoRA (.safetensors in diffusers/peft or "
        "kohya/A1111 layout; LoHa, LoKr and pickled files are refused), a textual-inversion "
        "embedding (A1111 .safetensors/.pt or diffusers) or a VAE (.safetensors, diffusers or "
        "LDM layout). Recipes name it by the file's sha256; A1111's short hashes (AutoV2, the "
        "LoRA 'addnet' hash) find it on import. The same file again refreshes the record; "
        "other bytes under a registered name and revision are refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--kind", required=True, choices=Resource.Kind.values)
        parser.add_argument("--name", required=True)
        parser.add_argument("--revision", default="main")
        parser.add_argument("--base", default="sd1", choices=Resource.Base.values)
        parser.add_argument("--air", default="", help="its AIR, e.g. urn:air:sd1:lora:civitai:1@2")
        parser.add_argument("--token", default="", help="embeddings: the word prompts use")
        parser.add_argument("--license", default="")
        parser.add_argument("--notes", default="")

    def handle(self, *args: object, **options: str) -> None:
        try:
            resource = resource_add(
                path=Path(options["path"]),
                kind=options["kind"],
                name=options["name"],
                revision=options["revision"],
                base=options["base"],
                air=options["air"],
                token=options["token"],
                license=options["license"],
                notes=options["notes"],
            )
        except ResourceRefused as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"registered {resource.kind} {resource} sha256 {resource.sha256} "
            f"(AutoV2 {resource.autov2}) {resource.air}"
        )
