"""The recipe form, built from the recipe type: engine.recipe.Recipe lists the fields, their
types, defaults, labels and help; this module only decides how each kind of field is typed in,
and says each label and help in the reader's language (the engine's are English).

A field left blank takes the chosen model's recommended value where it states one (scheduler,
steps, guidance, size: ModelVersion.sampling), else the recipe's default; the JSON API does the
same with fields left out. A new form starts from the default model's values, and
static/recipe_form.js follows the model chosen. The rules themselves are
engine.recipe.recipe_errors, shared with the API and the services.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import json
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.utils.functional import lazy
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from engine.pricing import recipe_megapixel_steps
from engine.recipe import (
    HIRES_UPSCALERS,
    REFINER_SWITCH_SUGGESTED,
    SDXL,
    Hires,
    Recipe,
    ResourceUse,
    family_errors,
    field_type,
    has_default,
    input_fields,
    input_name,
    recipe_errors,
    spec,
)
from gallery.forms.uploads import picture_from_upload, stored_sources_errors
from generator.i18n import translated
from generator.models import Image, ModelVersion
from generator.selectors.recipes import (
    model_version_default,
    model_versions_refiners,
    model_versions_renderable,
    recipe_limits,
)
from generator.selectors.records import image_detail
from generator.selectors.resources import recipe_resources_resolve, resources_renderable
from generator.services.records import source_from_record, source_image_store

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

_NUMBER_FIELDS: dict[type, type[forms.Field]] = {int: forms.IntegerField, float: forms.FloatField}

# The engine is Django-free: its labels, help and choice words are English, marked for the
# catalogue (engine.messages), and translated here when a form is shown.
translated_lazy = lazy(translated, str)
INVALID_CHOICE: dict[str, StrOrPromise] = {
    "scheduler": _("Unknown scheduler %(value)s; choose one from the list."),
    "mode": _("Unknown mode %(value)s; choose one from the list."),
}


def _form_field(recipe_field: dataclasses.Field[Any]) -> forms.Field:
    about = spec(recipe_field)
    kind, _nullable = field_type(recipe_field)
    name = input_name(recipe_field)
    label = translated_lazy(about.label)
    help_text = translated_lazy(about.help) if about.help else ""
    options: dict[str, Any] = {"label": label, "help_text": help_text, "required": False}
    if kind in _STRUCTURED_FIELDS:
        return _STRUCTURED_FIELDS[kind](**options)
    if has_default(recipe_field):
        options["initial"] = (
            about.suggested if about.suggested is not None else (recipe_field.default)
        )
    if about.input_name == "model_version":  # the one reference people choose from a list
        return forms.ModelChoiceField(
            queryset=model_versions_renderable(),
            widget=ModelSelect,
            empty_label=None,
            label=label,
            error_messages={
                "invalid_choice": _("Unknown model version; choose one from the list.")
            },
        )
    if recipe_field.name == "refiner":
        return RefinerField(**options)
    if recipe_field.name == "refiner_switch_at":
        options["widget"] = forms.NumberInput(
            attrs={"step": "0.05", "placeholder": f"{REFINER_SWITCH_SUGGESTED:g}"}
        )
        options["help_text"] = lazy(_switch_help, str)()
    if about.hidden:
        return _NUMBER_FIELDS[kind](widget=forms.HiddenInput, **options)
    if about.choices:
        return forms.TypedChoiceField(
            choices=[(value, translated_lazy(text)) for value, text in about.choices],
            error_messages={
                "invalid_choice": INVALID_CHOICE.get(
                    name, _("Unknown value %(value)s; choose one from the list.")
                )
            },
            **options,
        )
    if kind is str:
        widget = forms.Textarea(attrs={"rows": 3}) if about.multiline else forms.TextInput
        return forms.CharField(widget=widget, strip=False, **options)
    return _NUMBER_FIELDS[kind](**options)


class ModelSelect(forms.Select):
    """The model list, each option carrying what a recipe with that model starts from (its
    sampling, the words it knows, example prompts in the reader's language), for
    static/recipe_form.js to follow the model chosen."""

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(*args, **kwargs)
        model = getattr(option["value"], "instance", None)
        if isinstance(model, ModelVersion):
            notes = ModelNotes.of(model)
            option["attrs"].update(
                {
                    "data-sampling": json.dumps(model.sampling()),
                    "data-vocabulary": notes.vocabulary,
                    "data-examples": json.dumps(notes.examples, ensure_ascii=False),
                }
            )
        return option


@dataclasses.dataclass(frozen=True)
class ModelNotes:
    """What the page says beside the prompt about the model chosen."""

    vocabulary: str
    examples: list[str]

    @classmethod
    def of(cls, model: ModelVersion | None) -> ModelNotes:
        if model is None:
            return cls("", [])
        language = get_language() or settings.LANGUAGE_CODE
        return cls(model.vocabulary_in(language), model.example_prompts_in(language))


# Fields only some modes read, by the modes that read them: the page shows them in those modes
# only (static/recipe_form.js; without scripts every field shows and the form works the same).
MODE_FIELDS = {
    "strength": ("img2img", "inpaint"),
    "init_upload": ("img2img", "inpaint"),
    "mask_upload": ("inpaint",),
}


class LorasField(forms.Field):
    """LoRAs as people write them: "name:weight" (or A1111's "<lora:name:weight>"), one per
    line or separated by commas; the weight defaults to 1. Names are resolved to file digests
    when the recipe is made."""

    widget = forms.Textarea(attrs={"rows": 2, "placeholder": "scenes-outline-lora:0.8"})

    def to_python(self, value: Any) -> list[tuple[str, float]]:
        text = str(value or "")
        if "\x00" in text:
            raise forms.ValidationError(_("Text cannot contain NUL characters."))
        uses = []
        for raw in text.replace(",", "\n").splitlines():
            item = raw.strip().removeprefix("<lora:").removesuffix(">").strip()
            if not item:
                continue
            name, colon, weight = item.rpartition(":")
            if not colon:
                name, weight = item, "1"
            try:
                number = float(weight)
            except ValueError:
                raise forms.ValidationError(
                    _("Write each LoRA as name:weight (not %(item)s)."),
                    params={"item": raw.strip()},
                ) from None
            uses.append((name.strip(), number))
        return uses

    @staticmethod
    def text(loras: Any) -> str:
        """A recipe's LoRAs as this field shows them (by name where it has one)."""
        return "\n".join(f"{lora.name or lora.resource}:{lora.weight:g}" for lora in loras)


def _switch_help() -> str:
    return gettext(
        "SDXL only: the share of the denoising the first model does (above 0, below 1); "
        "blank: %(usual)s with a refiner, none without."
    ) % {"usual": f"{REFINER_SWITCH_SUGGESTED:g}"}


class RefinerField(forms.ModelChoiceField):
    """The registered SDXL refiners and SDXL models, chosen by weights digest (the recipe's own
    name for a refiner); blank: none."""

    def __init__(self, **options: Any) -> None:
        options.pop("initial", None)
        super().__init__(
            queryset=model_versions_refiners().order_by("family", "name", "revision"),
            to_field_name="weights_digest",
            empty_label=_("none"),
            error_messages={"invalid_choice": _("Unknown refiner; choose one from the list.")},
            **options,
        )

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj} ({obj.get_family_display()})"

    def to_python(self, value: Any) -> ModelVersion | None:
        # Two registrations of one folder share a digest; either names the same files (a
        # plain get() would fail on the pair).
        if value in self.empty_values:
            return None
        found = model_versions_refiners().filter(weights_digest=str(value)).first()
        if found is None:
            raise forms.ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": value},
            )
        return found


def _vae_field(**options: Any) -> forms.Field:
    return forms.ModelChoiceField(
        queryset=resources_renderable(kind="vae"),
        to_field_name="sha256",  # the recipe's own name for it
        empty_label=_("the model's own"),
        **{**options, "initial": None},
    )


class HiresWidget(forms.MultiWidget):
    def __init__(self) -> None:
        super().__init__(
            widgets={
                "scale": forms.NumberInput(
                    attrs={
                        "step": "0.25",
                        "placeholder": _("scale, e.g. 2"),
                        "aria-label": _("Hires scale"),
                    }
                ),
                "upscaler": forms.Select(
                    choices=[(name, name) for name in HIRES_UPSCALERS],
                    attrs={"aria-label": _("Hires upscaler")},
                ),
                "steps": forms.NumberInput(
                    attrs={"placeholder": _("steps (0: as many)"), "aria-label": _("Hires steps")}
                ),
                "denoise": forms.NumberInput(
                    attrs={
                        "step": "0.05",
                        "placeholder": _("denoise, e.g. 0.5"),
                        "aria-label": _("Hires denoising strength"),
                    }
                ),
            }
        )

    def decompress(self, value: Any) -> list[Any]:
        if isinstance(value, Hires):
            return [value.scale, value.upscaler, value.steps, value.denoise]
        return [None, HIRES_UPSCALERS[0], None, None]


class HiresField(forms.MultiValueField):
    """Hires fix in four boxes: a blank scale means no second pass."""

    widget = HiresWidget

    def __init__(self, **options: Any) -> None:
        options.pop("initial", None)
        super().__init__(
            fields=(
                forms.FloatField(required=False),
                forms.ChoiceField(
                    choices=[(name, name) for name in HIRES_UPSCALERS], required=False
                ),
                forms.IntegerField(required=False),
                forms.FloatField(required=False),
            ),
            require_all_fields=False,
            **options,
        )

    def compress(self, data_list: list[Any]) -> Hires | None:
        if not data_list or data_list[0] in (None, ""):
            return None
        scale, upscaler, steps, denoise = data_list
        return Hires(
            scale=scale,
            upscaler=upscaler or HIRES_UPSCALERS[0],
            steps=steps if steps is not None else 0,
            denoise=denoise if denoise is not None else 0.5,
        )


# Recipe fields whose values are not a single number or text, by the recipe type's kind.
_STRUCTURED_FIELDS: dict[type, Any] = {
    tuple: LorasField,
    ResourceUse: _vae_field,
    Hires: HiresField,
}


# What a recipe adds to the usual ones: shown folded unless used.
ADVANCED_FIELDS = ("loras", "vae", "prompt_weighting", "clip_skip", "hires")


def _holds_value(bound: Any) -> bool:
    """Whether a field says something other than its default (a folded group opens)."""
    value = bound.value()
    if isinstance(value, list | tuple):  # hires' boxes: the scale decides
        value = value[0] if value and value[0] not in ("", None) else None
    if value in ("", None, []):
        return False
    return str(value) != str(bound.field.initial)


@dataclasses.dataclass
class FieldGroup:
    legend: Any  # "" for the fields always shown
    fields: list[Any]
    open: bool


class RecipeForm(forms.Form):
    """A recipe typed in. The recipe's own fields are declared from the recipe type below the
    class; here are the upload fields: how img2img/inpainting inputs arrive before they are
    stored."""

    init_upload = forms.FileField(required=False, label=_("Init image (PNG, JPEG or WebP)"))
    mask_upload = forms.FileField(required=False, label=_("Mask (white = repaint, black = keep)"))
    # The mask painter's canvas, as a PNG data: URL.
    mask_data = forms.CharField(required=False, widget=forms.HiddenInput)
    # "Use as init image": a record whose pixels become the init image once the form is sent
    # (a page view stores nothing).
    init_record = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, viewer: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.viewer = viewer
        # Offered per deployment (SEEDBANK_PRECISIONS): fp16 only where GPU workers support it.
        precision = self.fields["precision"]
        assert isinstance(precision, forms.ChoiceField)
        precision.choices = [(p, p) for p in settings.SEEDBANK_PRECISIONS]
        precision.error_messages["invalid_choice"] = _(
            "Precision %(value)s is not available on this deployment's workers "
            "(fp16 needs CUDA GPUs); use fp32."
        )
        self._default_model = model_version_default()
        if self._default_model is not None:
            self.fields["model_version"].initial = self._default_model.pk
        if not self.is_bound:
            # A new recipe starts from its model's sampling; values given (a record's, an
            # imported prompt's) win over these, as initial values always do.
            for name, value in self._model_sampling(self.chosen_model()).items():
                self.fields[name].initial = value
        for name, modes in MODE_FIELDS.items():
            self.fields[name].widget.attrs["data-modes"] = " ".join(modes)
        self.fields["prompt"].widget.attrs["aria-describedby"] = "prompt-vocabulary"

    def chosen_model(self) -> ModelVersion | None:
        """The model the form is for: the one sent, else the one it was opened with, else the
        site's default."""
        if self.is_bound:
            ref = self.data.get(self.add_prefix("model_version"))
        else:
            ref = self.get_initial_for_field(self.fields["model_version"], "model_version")
        if isinstance(ref, ModelVersion):
            return ref
        if self._default_model is not None and str(ref) == str(self._default_model.pk):
            return self._default_model
        if str(ref or "").isdigit():
            return model_versions_renderable().filter(pk=int(str(ref))).first()
        return None

    def model_notes(self) -> ModelNotes:
        return ModelNotes.of(self.chosen_model())

    @staticmethod
    def _model_sampling(model: ModelVersion | None) -> dict[str, Any]:
        return model.sampling() if model is not None else {}

    def clean_init_upload(self) -> Any:
        upload = self.cleaned_data.get("init_upload")
        return picture_from_upload(upload) if upload else None

    def clean_mask_upload(self) -> Any:
        upload = self.cleaned_data.get("mask_upload")
        return picture_from_upload(upload) if upload else None

    def clean_mask_data(self) -> Any:
        value = self.cleaned_data.get("mask_data") or ""
        if not value:
            return None
        prefix = "data:image/png;base64,"
        if not value.startswith(prefix):
            raise forms.ValidationError(_("The painted mask must be a PNG data URL."))
        try:
            data = base64.b64decode(value[len(prefix) :], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise forms.ValidationError(_("The painted mask is not valid base64.")) from exc
        return picture_from_upload(io.BytesIO(data))

    def clean_init_record(self) -> Image | None:
        record_id = self.cleaned_data.get("init_record")
        if record_id is None:
            return None
        record = image_detail(image_id=record_id, viewer=self.viewer)
        if record is None or not record.image_file:
            raise forms.ValidationError(_("That record cannot be used as an init image."))
        return record

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:  # a field failed to parse; recipe checks would only repeat it
            return cleaned
        # Uploads become ids only once the recipe is accepted (recipe()); a stand-in id lets the
        # shared rules check that the inputs the mode needs are there.
        has_init = any(
            cleaned.get(name) for name in ("init_upload", "init_record", "init_image_id")
        )
        has_mask = any(cleaned.get(name) for name in ("mask_upload", "mask_data", "mask_id"))
        stand_in = self._recipe(init_image_id=-1 if has_init else None,
                                mask_id=-1 if has_mask else None)  # fmt: skip
        loras = cleaned.get("loras") or []
        for message in recipe_resources_resolve(loras=loras, vae=None).errors.get("loras", []):
            self.add_error("loras", message)
        errors = recipe_errors(stand_in, recipe_limits())
        model, refiner = cleaned.get("model_version"), cleaned.get("refiner")
        if model is not None:  # what this model's family reads (the service says it again)
            family = family_errors(stand_in, model.family, refiner.family if refiner else None)
            for name, messages in family.items():
                errors.setdefault(name, []).extend(messages)
        if cleaned.get("refiner_switch_at") is None and errors.get("refiner"):
            errors.pop("refiner_switch_at", None)  # filled in by the form, not typed
        for name, messages in errors.items():
            for message in messages:
                field = {"init_image": "init_upload", "mask": "mask_upload"}.get(name, name)
                self.add_error(field if field in self.fields else None, translated(message))
        if not errors:
            self._check_stored_sources(cleaned)
        return cleaned

    def _check_stored_sources(self, cleaned: dict[str, Any]) -> None:
        """The stored init image and mask named by id, as recipe() would use them (an upload or
        a record given beside an id wins over it): the viewer's to use, with their files, and
        the mask the init image's size."""
        mode = cleaned.get("mode")
        uses_init, uses_mask = mode in ("img2img", "inpaint"), mode == "inpaint"
        init_upload = cleaned.get("init_upload") if uses_init else None
        painted = (cleaned.get("mask_upload") or cleaned.get("mask_data")) if uses_mask else None
        given = init_upload is not None or cleaned.get("init_record") is not None
        init_id = cleaned.get("init_image_id") if uses_init and not given else None
        mask_id = cleaned.get("mask_id") if uses_mask and painted is None else None
        problems = stored_sources_errors(
            init_image_id=init_id,
            mask_id=mask_id,
            viewer=self.viewer,
            # A record used as the init image is left out: its size is its stored file's.
            init_size=init_upload.size if init_upload is not None else None,
            mask_size=painted.size if painted is not None else None,
        )
        fields = {
            "init_image": "init_image_id" if init_id is not None else "init_upload",
            "mask": "mask_id" if mask_id is not None else "mask_upload",
        }
        for name, messages in problems.items():
            for message in messages:
                self.add_error(fields[name], message)

    def recipe(self) -> Recipe:
        """The accepted recipe; stores uploaded init images and masks (by content hash, as the
        viewer's own). Call it once the quota allows the render: storing is a write."""
        data, owner = self.cleaned_data, self.viewer
        init_id, mask_id = data.get("init_image_id"), data.get("mask_id")
        if data.get("init_record") is not None:
            init_id = source_from_record(image=data["init_record"], owner=owner).pk
        if data.get("init_upload") is not None:
            init = source_image_store(picture=data["init_upload"], kind="init", owner=owner)
            init_id = init.pk
        painted = data.get("mask_upload") or data.get("mask_data")
        if painted is not None:
            mask_id = source_image_store(picture=painted, kind="mask", owner=owner).pk
        return self._recipe(init_image_id=init_id, mask_id=mask_id)

    def cost(self) -> float:
        """The accepted recipe's GPU work in megapixel-steps (engine.pricing), known before its
        uploads are stored: what the quota is asked about."""
        return recipe_megapixel_steps(self._recipe(init_image_id=None, mask_id=None))

    def _recipe(self, *, init_image_id: int | None, mask_id: int | None) -> Recipe:
        values: dict[str, Any] = {}
        model_sampling = self._model_sampling(self.cleaned_data.get("model_version"))
        for recipe_field in input_fields():
            value = self.cleaned_data.get(input_name(recipe_field))
            if value in (None, "") and recipe_field.name in model_sampling:
                value = model_sampling[recipe_field.name]  # blank takes the model's own
            elif value in (None, "") and has_default(recipe_field):
                continue  # blank takes the recipe's default
            values[recipe_field.name] = value
        values["model_version_id"] = values.pop("model_version_id").pk
        values.update(init_image_id=init_image_id, mask_id=mask_id)
        if (refiner := values.pop("refiner", None)) is not None:
            values["refiner"] = refiner.weights_digest
            # The form offers diffusers' usual hand-over point (its placeholder) once a refiner
            # is chosen; the recipe then records it like any typed value.
            values.setdefault("refiner_switch_at", REFINER_SWITCH_SUGGESTED)
        vae = values.pop("vae", None)
        resolved = recipe_resources_resolve(
            loras=values.pop("loras", []), vae=vae.sha256 if vae is not None else None
        )
        values.update(loras=resolved.loras, vae=resolved.vae)
        recipe = Recipe(**values)
        # Inputs the mode does not use are dropped, not refused: switching the mode back to
        # text-to-image after uploading an init image is a normal thing to do.
        if recipe.mode == "txt2img":
            recipe = dataclasses.replace(recipe, init_image_id=None, mask_id=None, strength=None)
        elif recipe.mode == "img2img":
            recipe = dataclasses.replace(recipe, mask_id=None)
        return recipe

    def field_groups(self) -> list[FieldGroup]:
        """The fields as the page shows them: the recipe people start from, then what they add
        to it (resources, clip skip, weighting, hires) and what only SDXL models read, each
        folded away unless it holds a value or an error."""
        sdxl = {input_name(f) for f in input_fields() if spec(f).family == SDXL}
        groups = [
            FieldGroup("", [], True),
            FieldGroup(_("LoRAs, embeddings, VAE, clip skip, weighting, hires fix"), [], False),
            FieldGroup(_("SDXL only: second prompts, size conditioning, refiner"), [], False),
        ]
        for bound in self:
            group = groups[2 if bound.name in sdxl else 1 if bound.name in ADVANCED_FIELDS else 0]
            group.fields.append(bound)
            if bound.errors or _holds_value(bound):
                group.open = True
        return [group for group in groups if group.fields]

    @classmethod
    def initial_from_image(cls, image: Any) -> dict[str, Any]:
        """The form's values for a record's recipe."""
        recipe = image.recipe()
        initial = {input_name(f): getattr(recipe, f.name) for f in input_fields()}
        initial["loras"] = LorasField.text(recipe.loras)
        initial["vae"] = recipe.vae.resource if recipe.vae is not None else None
        return initial


def _declare_recipe_fields() -> None:
    """The recipe's fields first, in the recipe type's order; then the upload fields; then the
    fields only SDXL models read, so the form for every other model reads as before. Declared
    as Django's form metaclass declares a class's own (each form copies base_fields)."""
    recipe_fields = {input_name(f): _form_field(f) for f in input_fields()}
    sdxl = {input_name(f) for f in input_fields() if spec(f).family == SDXL}
    RecipeForm.base_fields = RecipeForm.declared_fields = {
        **{name: field for name, field in recipe_fields.items() if name not in sdxl},
        **RecipeForm.declared_fields,
        **{name: field for name, field in recipe_fields.items() if name in sdxl},
    }


_declare_recipe_fields()
