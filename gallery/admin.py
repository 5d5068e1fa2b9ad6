from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from gallery.models import Image, Reproduction
from gallery.services import reproduction_create


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "prompt",
        "model_name",
        "seed",
        "scheduler",
        "steps",
        "status",
        "hidden",
        "created_at",
    ]
    list_filter = ["status", "hidden", "scheduler", "model_name"]
    search_fields = ["prompt", "negative_prompt", "pixel_sha256"]
    list_select_related = ["model_version"]
    raw_id_fields = ["parent", "job", "owner"]
    readonly_fields = ["pixel_sha256", "environment", "created_at", "finished_at", "evicted_at"]
    actions = ["reproduce"]

    @admin.action(description="Re-run the reproduction check (through the worker)")
    def reproduce(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        ready = queryset.filter(status=Image.Status.READY)
        for image in ready:
            reproduction_create(image=image, requested_by=request.user)  # type: ignore[arg-type]
        self.message_user(
            request,
            f"Queued {ready.count()} reproduction check(s); verdicts appear under Reproductions.",
            messages.SUCCESS,
        )


@admin.register(Reproduction)
class ReproductionAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "purpose", "verdict", "max_abs_diff", "psnr", "created_at"]
    list_filter = ["verdict", "purpose", "whole_batch"]
    raw_id_fields = ["image", "job", "requested_by"]
    readonly_fields = ["environment", "environment_diff"]
