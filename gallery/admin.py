"""Staff curation: collections, moderation actions on records, reproduction checks.

The records admin lives here, at the top layer, because its actions reach collections
(gallery) and embeddings (search) as well as records (generator)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from gallery.models import Collection, CollectionItem
from gallery.selectors import collection_find, collections_all
from gallery.services import collection_add_images, images_moderate
from generator.models import Image, Reproduction
from generator.services.reproductions import reproduction_create
from search.services import images_embedding_enqueue

# The record list's picture column, in CSS pixels (the 256-wide grid preview, scaled down).
PREVIEW_WIDTH = 64


class ImageActionForm(ActionForm):
    # Used by "Add to collection"; other actions ignore it.
    collection = forms.ModelChoiceField(queryset=collections_all(), required=False)


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "preview", "prompt", "model_name", "seed", "scheduler", "status",
                    "hidden", "nsfw", "featured", "created_at"]  # fmt: skip
    list_filter = ["status", "hidden", "nsfw", "featured", "scheduler", "model_name"]
    search_fields = ["prompt", "negative_prompt", "pixel_sha256"]
    list_select_related = ["model_version"]
    raw_id_fields = ["parent", "job", "owner"]
    readonly_fields = ["pixel_sha256", "environment", "created_at", "finished_at", "evicted_at"]
    action_form = ImageActionForm
    actions = ["add_to_collection", "feature", "unfeature", "hide", "unhide", "flag_nsfw",
               "unflag_nsfw", "reproduce", "reembed"]  # fmt: skip

    @admin.display(description="picture")
    def preview(self, image: Image) -> str:
        """The grid's small preview (escaped by format_html, prompt and address alike)."""
        src = image.grid_src
        if not src:
            return "—"
        width = PREVIEW_WIDTH
        height = max(1, round(width * image.output_height / max(image.output_width, 1)))
        return format_html(
            '<img src="{}" alt="{}" width="{}" height="{}" loading="lazy">',
            src,
            image.prompt[:120],
            width,
            height,
        )

    @admin.action(description="Add to collection (choose it below)")
    def add_to_collection(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        collection_id = request.POST.get("collection")
        collection = collection_find(collection_id=collection_id)
        if collection is None:
            self.message_user(request, "Choose a collection first.", messages.ERROR)
            return
        added = collection_add_images(
            actor=request.user,  # type: ignore[arg-type]
            collection=collection,
            images=queryset.order_by("pk"),
        )
        self.message_user(request, f"Added {added} image(s) to {collection}.", messages.SUCCESS)

    def _moderate(self, request: HttpRequest, queryset: QuerySet[Image], **flags: bool) -> None:
        changed = images_moderate(actor=request.user, images=queryset, **flags)  # type: ignore[arg-type]
        self.message_user(request, f"Updated {changed} image(s).", messages.SUCCESS)

    @admin.action(description="Feature")
    def feature(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        self._moderate(request, queryset, featured=True)

    @admin.action(description="Unfeature")
    def unfeature(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        self._moderate(request, queryset, featured=False)

    @admin.action(description="Hide (gone from gallery, search and API for non-staff)")
    def hide(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        self._moderate(request, queryset, hidden=True)

    @admin.action(description="Unhide")
    def unhide(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        self._moderate(request, queryset, hidden=False)

    @admin.action(description="Flag NSFW")
    def flag_nsfw(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        self._moderate(request, queryset, nsfw=True)

    @admin.action(description="Clear NSFW flag")
    def unflag_nsfw(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        self._moderate(request, queryset, nsfw=False)

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

    @admin.action(description="Re-embed with the active CLIP model")
    def reembed(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        ready = list(queryset.filter(status=Image.Status.READY).values_list("pk", flat=True))
        images_embedding_enqueue(image_ids=ready)
        self.message_user(request, f"Queued {len(ready)} embedding(s).", messages.SUCCESS)


class CollectionItemInline(admin.TabularInline):
    model = CollectionItem
    raw_id_fields = ["image"]
    extra = 0
    ordering = ["position"]


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "is_public", "is_featured", "position", "created_at"]
    list_editable = ["is_public", "is_featured", "position"]
    prepopulated_fields = {"slug": ["title"]}
    raw_id_fields = ["cover"]
    inlines = [CollectionItemInline]
    exclude = ["created_by"]

    def save_model(self, request: HttpRequest, obj: Collection, form: object, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)  # type: ignore[arg-type]


@admin.register(Reproduction)
class ReproductionAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "purpose", "verdict", "max_abs_diff", "psnr", "created_at"]
    list_filter = ["verdict", "purpose", "whole_batch"]
    raw_id_fields = ["image", "job", "requested_by"]
    readonly_fields = ["environment", "environment_diff"]
