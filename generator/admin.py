from django.contrib import admin

from generator.models import DevicePrice, ModelVersion, RenderJob, Resource


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "revision", "source_kind", "variant", "is_default", "weights_digest",
                    "archived_at", "created_at"]  # fmt: skip
    list_filter = ["is_default", "source_kind", "variant", "archived_at"]
    raw_id_fields = ["blend_a", "blend_b"]
    search_fields = ["name", "revision", "weights_digest"]
    readonly_fields = ["weights_digest", "created_at"]


@admin.register(RenderJob)
class RenderJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "owner",
        "progress_step",
        "progress_total",
        "render_seconds",
        "device",
        "created_at",
    ]
    list_filter = ["kind", "status", "device"]
    readonly_fields = [f.name for f in RenderJob._meta.fields]


@admin.register(DevicePrice)
class DevicePriceAdmin(admin.ModelAdmin):
    list_display = ["name_contains", "usd_per_hour", "notes"]
    list_editable = ["usd_per_hour"]


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    """Resources are added with `manage.py resource_add` (it digests and inspects the file);
    here staff describe and archive them. What pins a file is read-only."""

    list_display = ["name", "revision", "kind", "base", "file_format", "sha256", "archived_at"]
    list_filter = ["kind", "base", "archived_at"]
    search_fields = ["name", "sha256", "air", "token"]
    readonly_fields = ["kind", "path", "sha256", "addnet_sha256", "file_format", "size_bytes",
                       "created_at"]  # fmt: skip

    def has_add_permission(self, request: object) -> bool:
        return False
