"""What every page's template may ask about the viewer's choices, read only when it asks."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.http import HttpRequest

from gallery.models import UserPreferences
from gallery.selectors import viewer_nsfw_mode


class NsfwChoice:
    """`viewer_nsfw.show` / `.blur` / `.hide` in templates: one query the first time a page
    asks (signed-in users only), none for pages that never show a record."""

    def __init__(self, viewer: Any) -> None:
        self._viewer = viewer

    @cached_property
    def mode(self) -> str:
        return viewer_nsfw_mode(viewer=self._viewer)

    @property
    def show(self) -> bool:
        return self.mode == UserPreferences.Nsfw.SHOW

    @property
    def blur(self) -> bool:
        return self.mode == UserPreferences.Nsfw.BLUR

    @property
    def hide(self) -> bool:
        return self.mode == UserPreferences.Nsfw.HIDE

    def __str__(self) -> str:
        return self.mode


def viewer_choices(request: HttpRequest) -> dict[str, Any]:
    return {"viewer_nsfw": NsfwChoice(getattr(request, "user", None))}
