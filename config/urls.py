from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

from gallery import views as gallery_views
from generator import model_views
from generator import views as generator_views
from search import views as search_views

urlpatterns = [
    path("", gallery_views.home, name="home"),
    path("images/<int:image_id>/", gallery_views.detail, name="image_detail"),
    path("images/<int:image_id>/remix/", gallery_views.remix, name="image_remix"),
    path(
        "images/<int:image_id>/restore.json",
        gallery_views.restore_status,
        name="image_restore_status",
    ),
    re_path(
        r"^images/(?P<image_id>[0-9]+)/export\.(?P<fmt>json|py)$",
        gallery_views.export_recipe,
        name="image_export",
    ),
    path("collections/<str:slug>/", gallery_views.collection, name="collection"),
    path("users/<str:username>/", gallery_views.user_page, name="user_renders"),
    path("accounts/signup/", gallery_views.signup, name="signup"),
    path("search/", search_views.search_page, name="search"),
    path("api/v1/search", search_views.lexica_search, name="api_lexica_search"),
    path("api/v1/images", search_views.images_api, name="api_images"),
    path("api/v1/openapi.json", search_views.openapi_schema, name="api_openapi"),
    path("staff/", gallery_views.staff_dashboard, name="staff_dashboard"),
    path("generate/", generator_views.generate, name="generate"),
    path("models/<int:model_id>/", model_views.model_detail, name="model_detail"),
    path("jobs/<int:job_id>/", generator_views.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/status.json", generator_views.job_status, name="job_status"),
    path("api/v1/renders", generator_views.api_render_create, name="api_render_create"),
    path("api/v1/jobs/<int:job_id>", generator_views.job_status, name="api_job"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
if settings.SEEDBANK_SERVE_MEDIA:  # production serves media from object storage instead
    urlpatterns += [
        re_path(
            r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}, name="media"
        ),
    ]
