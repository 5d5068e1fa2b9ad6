"""Staff views of imports: each run's counts and problems, every source and its state."""

from __future__ import annotations

from django.contrib import admin

from archive.models import ImportProblem, ImportRun, SourceRecord


class ImportProblemInline(admin.TabularInline):
    model = ImportProblem
    fields = ("kind", "location", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0  # read-only: problems are what the run found


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "status", "read", "imported", "queued", "needs_model",
                    "needs_resource", "incomplete", "duplicates", "changed",
                    "rejected")  # fmt: skip
    list_filter = ("status",)
    readonly_fields = [field.name for field in ImportRun._meta.fields]
    inlines = [ImportProblemInline]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False  # runs are started by `manage.py import` or the upload page


@admin.register(SourceRecord)
class SourceRecordAdmin(admin.ModelAdmin):
    list_display = ("id", "tool", "location", "state", "model_name", "sampler", "image")
    list_filter = ("state", "tool")
    search_fields = ("location", "source_key", "model_name")
    readonly_fields = [field.name for field in SourceRecord._meta.fields]
    raw_id_fields = ("image", "run")

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
