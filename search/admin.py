from django.contrib import admin

from search.models import ImageEmbedding


@admin.register(ImageEmbedding)
class ImageEmbeddingAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "model_name", "dim", "created_at"]
    list_filter = ["model_name"]
    raw_id_fields = ["image"]
    exclude = ["embedding"]
