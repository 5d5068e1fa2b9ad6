"""A signed-in user's viewing preferences."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from gallery.models import UserPreferences


class PreferencesForm(forms.Form):
    nsfw = forms.ChoiceField(
        choices=UserPreferences.Nsfw.choices,
        widget=forms.RadioSelect,
        label=_("Images flagged NSFW"),
        help_text=_("Visitors who are not signed in see them blurred."),
    )
