"""Accounts: signing up, a user's page and their viewing preferences."""

from __future__ import annotations

from dataclasses import replace

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from gallery import ratelimit
from gallery.forms.preferences import PreferencesForm
from gallery.page_cache import anonymous_page_cache
from gallery.selectors import images_likes_mark, nsfw_left_out, viewer_nsfw_mode
from gallery.services import preferences_set
from generator.selectors.records import user_renders


@require_safe
@anonymous_page_cache
def user_page(request: HttpRequest, username: str) -> HttpResponse:
    page = user_renders(
        username=username,
        viewer=request.user,
        cursor=request.GET.get("before"),
        page_size=settings.SEEDBANK_GALLERY_PAGE_SIZE,
    )
    if page is None:
        raise Http404("No such user")
    # Left out after the keyset page is read (its cursor still follows the last row read): a
    # page may show fewer cards, never skip or repeat one.
    page = replace(page, images=nsfw_left_out(page.images, viewer=request.user))
    images_likes_mark(images=page.images, viewer=request.user)
    return render(request, "gallery/user.html", {"username": username, "page": page})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """What the signed-in user sees: NSFW records shown, blurred or left out."""
    user = request.user
    form = PreferencesForm(
        request.POST if request.method == "POST" else None,
        initial={"nsfw": viewer_nsfw_mode(viewer=user)},
    )
    if request.method == "POST":
        if form.is_valid():
            preferences_set(user=user, nsfw=form.cleaned_data["nsfw"])  # type: ignore[arg-type]
            messages.success(request, _("Preferences saved."))
            return redirect("preferences")
        return render(request, "gallery/preferences.html", {"form": form}, status=400)
    return render(request, "gallery/preferences.html", {"form": form})


@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and (refused := ratelimit.signup_refused(request)):
        return refused
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        # Signed in by the password it was just given: no need to ask axes' backend first.
        auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(
        request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200
    )
