from django.contrib import admin

from gallery.models import Image, Reproduction


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
    readonly_fields = ["pixel_sha256", "environment", "created_at", "finished_at"]


@admin.register(Reproduction)
class ReproductionAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "verdict", "max_abs_diff", "psnr", "created_at"]
    list_filter = ["verdict"]
    raw_id_fields = ["image", "job", "requested_by"]
    readonly_fields = ["environment", "environment_diff"]
