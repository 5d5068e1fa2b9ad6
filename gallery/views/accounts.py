"""Accounts: signing up and a user's page."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from gallery import ratelimit
from gallery.page_cache import anonymous_page_cache
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
    return render(request, "gallery/user.html", {"username": username, "page": page})


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
