"""Codes the engine stores (verdicts, modes) as words in the reader's language.

The engine is Django-free and stores codes ("bit-identical", "txt2img"); pages show these
labels instead: `{% load labels %}{{ code|verdict_label }}`, `{{ code|mode_label }}`.
"""

from __future__ import annotations

from django import template
from django.utils.translation import pgettext_lazy

from engine import verdicts
from engine.recipe import MODE_LABELS
from generator.i18n import translated

register = template.Library()

# Every verdict a Reproduction can hold, lower case as the pages and docs write them (the
# model's choices are title case, for the admin).
VERDICT_LABELS = {
    "pending": pgettext_lazy("verdict", "pending"),
    verdicts.BIT_IDENTICAL: pgettext_lazy("verdict", "bit-identical"),
    verdicts.VISUALLY_IDENTICAL: pgettext_lazy("verdict", "visually identical"),
    verdicts.DIFFERS: pgettext_lazy("verdict", "differs"),
    "failed": pgettext_lazy("verdict", "failed"),
}


@register.filter
def verdict_label(code: object) -> str:
    """A verdict code's label; an unknown code as it is."""
    label = VERDICT_LABELS.get(str(code))
    return str(label) if label is not None else str(code)


@register.filter
def mode_label(code: object) -> str:
    """A recipe mode's label ("txt2img" → "text to image"); anything else as it is."""
    label = MODE_LABELS.get(str(code))
    return translated(label) if label is not None else str(code)
