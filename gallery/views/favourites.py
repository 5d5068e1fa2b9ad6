"""Favourites: the heart on a record (a plain form POST: it works without JavaScript) and the
signed-in user's page of the records they like."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from gallery import ratelimit
from gallery.selectors import favourites_page, viewer_hides_nsfw
from gallery.services import favourite_toggle
from generator.selectors.records import image_detail


@login_required
@require_POST
def like_toggle(request: HttpRequest, image_id: int) -> HttpResponse:
    """Like the record, or stop liking it; back to the page the heart was on."""
    image = image_detail(image_id=image_id, viewer=request.user)
    if image is None:
        raise Http404("No such image")
    if refused := ratelimit.like_refused(request):
        return refused
    favourite_toggle(user=request.user, image=image)  # type: ignore[arg-type]
    following = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        following, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect("image_detail", image_id=image.pk)
    # Back at the heart that was pressed, not at the top of a long grid.
    return redirect(f"{following.split('#')[0]}#like-{image.pk}")


@login_required
@require_safe
def favourites(request: HttpRequest) -> HttpResponse:
    """The records the signed-in user likes, last liked first."""
    page = favourites_page(
        user=request.user,
        cursor=request.GET.get("before"),
        page_size=settings.SEEDBANK_GALLERY_PAGE_SIZE,
        hide_nsfw=viewer_hides_nsfw(viewer=request.user),
    )
    return render(request, "gallery/favourites.html", {"page": page})
