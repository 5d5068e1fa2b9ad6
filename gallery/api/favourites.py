"""Favourites and viewing preferences: GET /images/{id} (a record with its likes), POST and
DELETE /images/{id}/like, GET /favourites, GET and PUT /preferences."""

from __future__ import annotations

from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.security import django_auth

from gallery import ratelimit
from gallery.api.schemas import Message
from gallery.payloads import record_payload
from gallery.selectors import (
    favourites_page,
    image_likes,
    viewer_hides_nsfw,
    viewer_nsfw_mode,
)
from gallery.services import favourite_add, favourite_remove, preferences_set
from generator.models import Image
from generator.selectors.records import image_detail

router = Router(tags=["favourites"])


class RecordOut(Schema):
    kind: Literal["record"] = "record"
    id: int
    url: str
    src: str
    pixel_sha256: str
    recipe: dict[str, Any] = Field(description="the portable recipe (model by name and digest)")
    nsfw: bool = Field(description="flagged NSFW by moderation")
    likes: int = Field(description="how many signed-in users like the record")
    liked: bool = Field(description="whether you do (false when not signed in)")


class LikeOut(Schema):
    id: int
    likes: int
    liked: bool


class FavouritesOut(Schema):
    results: list[RecordOut] = Field(description="the records you like, the last liked first")
    next_cursor: str | None


class FavouritesQuery(Schema):
    cursor: str | None = Field(None, description="next_cursor of the previous page")


class PreferencesIn(Schema):
    nsfw: Literal["show", "blur", "hide"] = Field(
        description="records flagged NSFW: shown, blurred (pages blur them; API results carry "
        "nsfw: true) or left out of lists, search results and the API's"
    )


class PreferencesOut(Schema):
    nsfw: str


def _record(request: HttpRequest, image_id: int) -> Image | None:
    return image_detail(image_id=image_id, viewer=request.user)


def _marked(request: HttpRequest, image: Image) -> Image:
    image.likes, image.liked = image_likes(image=image, viewer=request.user)  # type: ignore[attr-defined]
    return image


@router.get(
    "/images/{image_id}",
    response={200: RecordOut, 404: Message},
    url_name="api_image",
    summary="A record: its recipe, NSFW flag and likes",
)
def record(request: HttpRequest, image_id: int) -> Any:
    image = _record(request, image_id)
    if image is None:
        return Status(404, {"error": "No such image."})
    return record_payload(request=request, image=_marked(request, image))


def _like(request: HttpRequest, image_id: int, *, liked: bool) -> Any:
    image = _record(request, image_id)
    if image is None:
        return Status(404, {"error": "No such image."})
    if refused := ratelimit.like_refused(request, as_json=True):
        return refused
    user = request.user
    if liked:
        favourite_add(user=user, image=image)  # type: ignore[arg-type]
    else:
        favourite_remove(user=user, image=image)  # type: ignore[arg-type]
    likes, mine = image_likes(image=image, viewer=user)
    return {"id": image.pk, "likes": likes, "liked": mine}


@router.post(
    "/images/{image_id}/like",
    auth=django_auth,
    response={200: LikeOut, 401: Message, 404: Message, 429: Message},
    url_name="api_image_like",
    summary="Like a record (liking it again changes nothing)",
)
def like(request: HttpRequest, image_id: int) -> Any:
    return _like(request, image_id, liked=True)


@router.delete(
    "/images/{image_id}/like",
    auth=django_auth,
    response={200: LikeOut, 401: Message, 404: Message, 429: Message},
    url_name="api_image_unlike",
    summary="Stop liking a record",
)
def unlike(request: HttpRequest, image_id: int) -> Any:
    return _like(request, image_id, liked=False)


@router.get(
    "/favourites",
    auth=django_auth,
    response={200: FavouritesOut, 401: Message},
    url_name="api_favourites",
    summary="The records you like, the last liked first (a cursor pages on)",
)
def favourites(request: HttpRequest, params: Query[FavouritesQuery]) -> Any:  # type: ignore[type-arg]
    page = favourites_page(
        user=request.user,
        cursor=params.cursor,
        page_size=settings.SEEDBANK_GALLERY_PAGE_SIZE,
        hide_nsfw=viewer_hides_nsfw(viewer=request.user),
    )
    return {
        "results": [record_payload(request=request, image=image) for image in page.images],
        "next_cursor": page.next_cursor,
    }


@router.get(
    "/preferences",
    auth=django_auth,
    response={200: PreferencesOut, 401: Message},
    url_name="api_preferences",
    summary="What you chose to see",
)
def preferences(request: HttpRequest) -> Any:
    return {"nsfw": viewer_nsfw_mode(viewer=request.user)}


@router.put(
    "/preferences",
    auth=django_auth,
    response={200: PreferencesOut, 400: Message, 401: Message},
    url_name="api_preferences_set",
    summary="Choose what to see: NSFW records shown, blurred or left out",
)
def preferences_put(request: HttpRequest, choice: PreferencesIn) -> Any:
    stored = preferences_set(user=request.user, nsfw=choice.nsfw)  # type: ignore[arg-type]
    return {"nsfw": stored.nsfw}
