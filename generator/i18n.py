"""The engine's texts in the reader's language.

The engine is Django-free: it writes English and marks it for the catalogue (engine.messages).
Labels and help are plain marked strings; messages with values are `Message`s, whose template
is translated and then filled in.
"""

from __future__ import annotations

from django.utils.translation import gettext

from engine.messages import Message


def translated(text: str) -> str:
    """`text` in the active language (unchanged when the catalogue does not have it)."""
    if isinstance(text, Message):
        template = gettext(text.template)
        return template % text.values if text.values else template
    return gettext(text)
