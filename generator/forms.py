"""The recipe form: parses HTML and JSON input; the rules themselves live in recipes.py."""

from __future__ import annotations

from typing import Any

from django import forms

from generator.models import ModelVersion
from generator.recipes import SEED_MAX, Recipe, recipe_errors
from generator.schedulers import DEFAULT_SCHEDULER, SCHEDULERS
from generator.services import recipe_limits


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
    # fp16 needs a CUDA worker; it is offered once workers report their devices (issue 5).
    precision = forms.ChoiceField(choices=[("fp32", "fp32")], initial="fp32")
    batch_size = forms.IntegerField(initial=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        default = ModelVersion.objects.filter(is_default=True).first()
        if default is not None:
            self.fields["model_version"].initial = default.pk

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:  # a field failed to parse; recipe checks would only repeat it
            return cleaned
        for name, messages in recipe_errors(self.recipe(), recipe_limits()).items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)
        return cleaned

    def recipe(self) -> Recipe:
        data = self.cleaned_data
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
        )

    @classmethod
    def initial_from_image(cls, image: Any) -> dict[str, Any]:
        return {
            "model_version": image.model_version_id,
            "prompt": image.prompt,
            "negative_prompt": image.negative_prompt,
            "seed": image.seed,
            "scheduler": image.scheduler,
            "steps": image.steps,
            "guidance": image.guidance,
            "width": image.width,
            "height": image.height,
            "precision": image.precision,
            "batch_size": 1,
        }
