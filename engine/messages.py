"""Messages the engine writes for people: English, and marked for translation (Django-free).

The engine cannot call Django's gettext, so a rule returns a `Message`: a str that reads as
English wherever nothing translates it (workers, logs, the JSON API), and keeps its template and
values so the web layer can translate the template and fill the values in (gallery.i18n).
`gettext_noop` is a name Django's makemessages already collects, so the templates reach the
catalogue like any other string.
"""

from __future__ import annotations

from typing import Any


def gettext_noop(message: str) -> str:
    """Marks `message` for the catalogue; translation happens later, where a language is known."""
    return message


class Message(str):
    """`template % values` as a str, remembering both (values are filled in by name)."""

    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, **values: Any) -> Message:
        message = super().__new__(cls, template % values if values else template)
        message.template = template
        message.values = values
        return message
