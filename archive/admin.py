"""Staff views of imports: each run's counts and problems, every source and its state."""

from __future__ import annotations

from django.contrib import admin

from archive.models import ImportProblem, ImportRun, SourcePrompt, SourceRecord
from archive.services.prompts import source_prompt_hide


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


@admin.register(SourcePrompt)
class SourcePromptAdmin(admin.ModelAdmin):
    """Prompt-only search results: staff hide one as they hide a record."""

    list_display = ("source", "prompt", "nsfw", "hidden", "embedding_model")
    list_filter = ("hidden", "nsfw")
    search_fields = ("prompt",)
    fields = ("source", "prompt", "negative_prompt", "known", "nsfw", "hidden", "embedding_model")
    readonly_fields = fields
    actions = ["hide", "show"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False  # made by imports

    @admin.action(description="Hide from search")
    def hide(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        for row in queryset:
            source_prompt_hide(source_prompt=row, hidden=True)

    @admin.action(description="Show in search again")
    def show(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        for row in queryset:
            source_prompt_hide(source_prompt=row, hidden=False)
