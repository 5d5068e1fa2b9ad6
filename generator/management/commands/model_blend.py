"""Blend two registered models into a new one: alpha * A + (1 - alpha) * B."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator.models import ModelVersion
from generator.selectors.model_versions import model_version_by_id
from generator.services.model_versions import RegistryError, blend_create, blend_rematerialise


class Command(BaseCommand):
    help = (
        "Materialise alpha * A + (1 - alpha) * B (every floating tensor of unet, vae and "
        "text_encoder; configs, tokenizer and scheduler from B) under "
        "SEEDBANK_MODELS_DIR/<name>-<revision>/ and register it with its definition. A and B "
        "must share an architecture. The files are deterministic: the same definition always "
        "gives the same digest, so `--rebuild ID` can recreate a blend whose files are missing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--a", type=int, help="id of model A")
        parser.add_argument("--b", type=int, help="id of model B")
        parser.add_argument("--alpha", type=float, help="weight of A, from 0 to 1")
        parser.add_argument("--name")
        parser.add_argument("--revision", default="main")
        parser.add_argument("--license", default="")
        parser.add_argument("--notes", default="")
        parser.add_argument("--make-default", action="store_true")
        parser.add_argument(
            "--rebuild",
            type=int,
            metavar="ID",
            help="rebuild the files of blend ID from its definition (checks the digest)",
        )

    def handle(
        self,
        *args: object,
        a: int | None,
        b: int | None,
        alpha: float | None,
        name: str | None,
        revision: str,
        license: str,
        notes: str,
        make_default: bool,
        rebuild: int | None,
        **options: object,
    ) -> None:
        try:
            if rebuild is not None:
                blend = self._model(rebuild, "--rebuild")
                path = blend_rematerialise(blend, force=True)
                self.stdout.write(f"Rebuilt {blend} at {path}: digest {blend.weights_digest}.")
                return
            if a is None or b is None or alpha is None or name is None:
                raise CommandError("A blend needs --a, --b, --alpha and --name.")
            model_version = blend_create(
                a=self._model(a, "--a"),
                b=self._model(b, "--b"),
                alpha=alpha,
                name=name,
                revision=revision,
                license=license,
                notes=notes,
                make_default=make_default,
            )
        except RegistryError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Registered blend {model_version} (id {model_version.pk}) = "
            f"{model_version.blend_alpha:g} × {model_version.blend_a} + "
            f"{1 - (model_version.blend_alpha or 0):g} × {model_version.blend_b} at "
            f"{model_version.path}, weights digest {model_version.weights_digest}."
        )

    @staticmethod
    def _model(model_id: int, flag: str) -> ModelVersion:
        model_version = model_version_by_id(model_id=model_id)
        if model_version is None:
            raise CommandError(f"{flag}: no model version with id {model_id}.")
        return model_version
