"""The recipe form: parses HTML and JSON input; the rules themselves live in recipes.py."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from django import forms
from django.conf import settings

from generator.models import ModelVersion
from generator.recipes import SEED_MAX, Recipe, recipe_errors
from generator.schedulers import DEFAULT_SCHEDULER, SCHEDULERS
from generator.services import recipe_limits
from search.forms import picture_from_upload


class RecipeForm(forms.Form):
    model_version = forms.ModelChoiceField(
        queryset=ModelVersion.objects.filter(archived_at__isnull=True),
        empty_label=None,
        label="Model",
        error_messages={"invalid_choice": "Unknown model version; choose one from the list."},
    )
    # Not `required`: recipe_errors words the message for an empty prompt.
    prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    negative_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    seed = forms.IntegerField(
        required=False, help_text=f"0 to {SEED_MAX}; blank picks a random seed (then stored)."
    )
    scheduler = forms.ChoiceField(
        choices=[(name, name) for name in SCHEDULERS],
        initial=DEFAULT_SCHEDULER,
        error_messages={"invalid_choice": "Unknown scheduler %(value)s; choose one from the list."},
    )
    steps = forms.IntegerField(initial=20)
    guidance = forms.FloatField(initial=7.5, label="Guidance (CFG scale)")
    width = forms.IntegerField(initial=64)
    height = forms.IntegerField(initial=64)
    # Offered per deployment (SEEDBANK_PRECISIONS): fp16 only where the GPU workers support it.
    precision = forms.ChoiceField(
        initial="fp32",
        error_messages={
            "invalid_choice": "Precision %(value)s is not available on this deployment's workers "
            "(fp16 needs CUDA GPUs); use fp32."
        },
    )
    batch_size = forms.IntegerField(initial=1)
    mode = forms.ChoiceField(
        choices=[("txt2img", "text to image"), ("img2img", "image to image"),
                 ("inpaint", "inpainting")],
        initial="txt2img",
        required=False,  # absent means text to image, so older API clients keep working
    )  # fmt: skip
    strength = forms.FloatField(
        required=False,
        initial=0.75,
        help_text="img2img/inpainting: 0 keeps the init image, 1 ignores it.",
    )
    init_upload = forms.FileField(required=False, label="Init image (PNG, JPEG or WebP)")
    mask_upload = forms.FileField(required=False, label="Mask (white = repaint, black = keep)")
    # Set by "use as init image", by a remix of an img2img record, or by the mask painter.
    init_image_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    mask_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    mask_data = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["precision"].choices = [(p, p) for p in settings.SEEDBANK_PRECISIONS]
        default = ModelVersion.objects.filter(is_default=True).first()
        if default is not None:
            self.fields["model_version"].initial = default.pk

    def clean_init_upload(self) -> Any:
        upload = self.cleaned_data.get("init_upload")
        return picture_from_upload(upload) if upload else None

    def clean_mask_upload(self) -> Any:
        upload = self.cleaned_data.get("mask_upload")
        return picture_from_upload(upload) if upload else None

    def clean_mask_data(self) -> Any:
        """The painter's canvas as a data: URL (base64 PNG)."""
        value = self.cleaned_data.get("mask_data") or ""
        if not value:
            return None
        prefix = "data:image/png;base64,"
        if not value.startswith(prefix):
            raise forms.ValidationError("The painted mask must be a PNG data URL.")
        try:
            data = base64.b64decode(value[len(prefix) :], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise forms.ValidationError("The painted mask is not valid base64.") from exc
        return picture_from_upload(io.BytesIO(data))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:  # a field failed to parse; recipe checks would only repeat it
            return cleaned
        # Uploads become ids only once the recipe is accepted (recipe()); a stand-in id lets the
        # shared rules check that the inputs the mode needs are there.
        has_init = cleaned.get("init_upload") is not None or cleaned.get("init_image_id")
        has_mask = (
            cleaned.get("mask_upload") is not None
            or cleaned.get("mask_data") is not None
            or cleaned.get("mask_id")
        )
        stand_in = self._recipe(init_image_id=-1 if has_init else None,
                                mask_id=-1 if has_mask else None)  # fmt: skip
        for name, messages in recipe_errors(stand_in, recipe_limits()).items():
            for message in messages:
                field = {"init_image": "init_upload", "mask": "mask_upload"}.get(name, name)
                self.add_error(field if field in self.fields else None, message)
        return cleaned

    def recipe(self) -> Recipe:
        """The accepted recipe; stores uploaded init images and masks (by content hash)."""
        from gallery.models import SourceImage
        from gallery.services import source_image_store

        data = self.cleaned_data
        init_id, mask_id = data.get("init_image_id"), data.get("mask_id")
        if data.get("init_upload") is not None:
            init_id = source_image_store(picture=data["init_upload"], kind=SourceImage.Kind.INIT).pk
        painted = data.get("mask_upload") or data.get("mask_data")
        if painted is not None:
            mask_id = source_image_store(picture=painted, kind=SourceImage.Kind.MASK).pk
        mode = data.get("mode") or "txt2img"
        if mode == "txt2img":
            init_id = mask_id = None
        elif mode == "img2img":
            mask_id = None
        return self._recipe(init_image_id=init_id, mask_id=mask_id)

    def _recipe(self, *, init_image_id: int | None, mask_id: int | None) -> Recipe:
        data = self.cleaned_data
        uses_init = data.get("mode") in ("img2img", "inpaint")
        return Recipe(
            model_version_id=data["model_version"].pk,
            prompt=data.get("prompt") or "",
            negative_prompt=data.get("negative_prompt") or "",
            seed=data.get("seed"),
            scheduler=data["scheduler"],
            steps=data["steps"],
            guidance=data["guidance"],
            width=data["width"],
            height=data["height"],
            precision=data["precision"],
            batch_size=data["batch_size"],
            mode=data.get("mode") or "txt2img",
            init_image_id=init_image_id,
            mask_id=mask_id,
            strength=data.get("strength") if uses_init else None,
        )

    @classmethod
    def initial_from_image(cls, image: Any) -> dict[str, Any]:
        """The form's fields for a record's recipe (Image.recipe() holds the field list)."""
        recipe = image.recipe().as_dict()
        recipe["model_version"] = recipe.pop("model_version_id")
        return recipe
