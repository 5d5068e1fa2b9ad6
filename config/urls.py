"""URLs: the web gallery's pages (gallery/views) and the JSON API (gallery/api, django-ninja)."""

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.i18n import set_language

from config.health import healthz
from gallery.api import api
from gallery.views import (
    accounts,
    collections,
    favourites,
    generate,
    imports,
    media,
    models,
    provenance,
    records,
    remix,
    search,
    staff,
)


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # Resolved per request: the hashed name exists only once collectstatic has run.
    return HttpResponsePermanentRedirect(static("favicon.svg"))


urlpatterns = [
    path("", records.home, name="home"),
    path("images/<int:image_id>/", records.detail, name="image_detail"),
    path("images/<int:image_id>/remix/", remix.remix, name="image_remix"),
    path("images/<int:image_id>/diff/<int:other_id>/", records.diff, name="image_diff"),
    path("images/<int:image_id>/restore/", records.restore, name="image_restore"),
    path("images/<int:image_id>/like/", favourites.like_toggle, name="image_like"),
    path("images/<int:image_id>/restore.json", records.restore_status, name="image_restore_status"),
    re_path(
        r"^images/(?P<image_id>[0-9]+)/export\.(?P<fmt>json|py|zip)$",
        records.export_recipe,
        name="image_export",
    ),
    path("collections/<str:slug>/", collections.collection, name="collection"),
    path(
        "collections/<str:slug>/export.zip",
        collections.collection_export,
        name="collection_export",
    ),
    path("users/<str:username>/", accounts.user_page, name="user_renders"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/preferences/", accounts.preferences, name="preferences"),
    path("favourites/", favourites.favourites, name="favourites"),
    path("search/", search.search_page, name="search"),
    path("check/", provenance.check_page, name="picture_check"),
    path("check/verify/<int:image_id>/", provenance.check_verify, name="picture_check_verify"),
    path("staff/", staff.staff_dashboard, name="staff_dashboard"),
    path("staff/import/", imports.staff_import, name="staff_import"),
    path("staff/import/<int:run_id>/", imports.staff_import_run, name="staff_import_run"),
    path("generate/", generate.generate, name="generate"),
    path("models/<int:model_id>/", models.model_detail, name="model_detail"),
    path("jobs/<int:job_id>/", generate.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/status.json", generate.job_status, name="job_status"),
    path("jobs/<int:job_id>/cancel/", generate.job_cancel, name="job_cancel"),
    # The language switcher in every page's header posts here without a CSRF token: a forged
    # switch only changes the language of the victim's next page, while a token would make
    # every anonymous page uncacheable (gallery/page_cache.py refuses pages that carry one).
    path("i18n/setlang/", csrf_exempt(set_language), name="set_language"),
    path("api/v1/", api.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page says.
    path("favicon.ico", favicon),
]
if settings.SEEDBANK_SERVE_MEDIA:  # production serves media from object storage instead
    urlpatterns += [
        re_path(r"^media/(?P<path>.*)$", media.media, name="media"),
    ]
