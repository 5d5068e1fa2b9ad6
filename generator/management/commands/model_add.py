"""Register a local model: a diffusers folder, or a single-file checkpoint converted offline."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine.schedulers import DEFAULT_SCHEDULER
from generator.models import ModelVersion
from generator.services.model_versions import RegistryError, model_add


class Command(BaseCommand):
    help = (
        "Register a local Stable Diffusion model. PATH is either a diffusers folder (it has "
        "model_index.json; registered where it is) or a single-file checkpoint: one .safetensors "
        "file in the original Stable Diffusion (CompVis/A1111) key layout - "
        "model.diffusion_model.*, first_stage_model.*, cond_stage_model.*. A single file is "
        "converted offline with diffusers' from_single_file into a diffusers folder under "
        "SEEDBANK_MODELS_DIR/<name>-<revision>/, which is what gets registered; the file's "
        "sha256 is recorded. Single files need --config FOLDER, a local diffusers folder of the "
        "same architecture (an SD 1.5 folder for an SD 1.5 fine-tune): its configs, tokenizer "
        "and scheduler are used, never its weights, and nothing is downloaded. The file must "
        "hold UNet, VAE and text encoder; pickled .ckpt files are refused. Adding the same "
        "files under the same name and revision again only refreshes the record; other files "
        "under a registered name and revision are refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="diffusers folder or .safetensors file")
        parser.add_argument("--name", required=True)
        parser.add_argument("--revision", default="main")
        parser.add_argument(
            "--default-scheduler",
            default=DEFAULT_SCHEDULER,
            help="canonical name, A1111 sampler name or DiffusionDB code (default PNDM)",
        )
        parser.add_argument(
            "--native-size", type=int, default=512, help="side in pixels it was trained at"
        )
        parser.add_argument(
            "--variant",
            default="",
            choices=[value for value in ModelVersion.Variant.values if value],
            help=(
                "ema: EMA weights (usual for rendering); non-ema: raw training weights; full: a "
                "training checkpoint with both. For a single file holding both, ema or non-ema "
                "picks which weights to convert."
            ),
        )
        parser.add_argument("--license", default="", help="e.g. creativeml-openrail-m")
        parser.add_argument("--notes", default="")
        parser.add_argument("--make-default", action="store_true")
        parser.add_argument(
            "--config",
            type=Path,
            default=None,
            help="for a single file: a local diffusers folder of the same architecture",
        )

    def handle(
        self,
        *args: object,
        path: Path,
        name: str,
        revision: str,
        default_scheduler: str,
        native_size: int,
        variant: str,
        license: str,
        notes: str,
        make_default: bool,
        config: Path | None,
        **options: object,
    ) -> None:
        try:
            model_version = model_add(
                path=path,
                name=name,
                revision=revision,
                default_scheduler=default_scheduler,
                native_size=native_size,
                variant=variant,
                license=license,
                notes=notes,
                make_default=make_default,
                config=config,
            )
        except RegistryError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Registered {model_version} (id {model_version.pk}, "
            f"{model_version.get_source_kind_display()}) at {model_version.path}, "
            f"weights digest {model_version.weights_digest}"
            + (" - now the default model." if model_version.is_default else ".")
        )
