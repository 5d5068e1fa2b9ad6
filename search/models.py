from __future__ import annotations

from django.db import models
from pgvector.django import HnswIndex, VectorField

from generator.models import Image

# Matches real ViT-B-32 CLIP; the tiny demo CLIP is built with the same width so the same column
# serves production. Another width means a new column and a re-index, never mixed vectors.
EMBEDDING_DIM = 512
HNSW_INDEX = "embedding_hnsw_cosine"  # rebuilt by search.services.embedding_index_rebuild
# The Chinese prompts' own graph (lang:zh): a partial HNSW index over their vectors alone.
CHINESE_HNSW_INDEX = "embedding_hnsw_chinese"
# The graph's build parameters (the benchmarks' and tests' archives build it with them too).
# ef_construction 128, not pgvector's 64: at 1M records the graph built with 64 left true
# neighbours unreachable (recall@10 0.963 unfiltered, 0.971 at a 10 % filter, flat from
# ef_search 120 to 400); built with 128 the same searches find 0.989 and 0.990 in the same
# time, for a build ~1.5x as long (docs/benchmarks.md).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128


def _cosine_graph(name: str, condition: models.Q | None = None) -> HnswIndex:
    """An HNSW index over the vectors by cosine distance, built with the parameters above."""
    return HnswIndex(
        name=name,
        fields=["embedding"],
        m=HNSW_M,
        ef_construction=HNSW_EF_CONSTRUCTION,
        opclasses=["vector_cosine_ops"],
        condition=condition,
    )


class ImageEmbedding(models.Model):
    """A CLIP image embedding, tagged with the model that made it."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="clip_embeddings")
    model_name = models.CharField(max_length=200)
    dim = models.PositiveSmallIntegerField()
    embedding = VectorField(dimensions=EMBEDDING_DIM)
    # Whether the record's prompt has Chinese characters (the search box's lang:zh), kept by
    # triggers from generator_image.prompt however either row is written (migration search
    # 0011): a partial index's condition may name only its own table's columns.
    chinese_prompt = models.BooleanField(db_default=False, default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_name"], name="one_embedding_per_model")
        ]
        indexes = [
            _cosine_graph(HNSW_INDEX),
            # lang:zh walks this graph of the Chinese prompts' vectors (5 % of the bench's
            # million): the whole graph with that filter visited ~20 tuples per one kept.
            _cosine_graph(CHINESE_HNSW_INDEX, condition=models.Q(chinese_prompt=True)),
        ]

    def __str__(self) -> str:
        return f"{self.model_name} embedding of #{self.image_id}"


class EmbeddingModel(models.Model):
    """A CLIP model that embeddings are made with. Exactly one is active: queries use only its
    vectors, so switching models (manage.py reembed) never mixes vector spaces."""

    name = models.CharField(max_length=200, unique=True, help_text="config name @ weights digest")
    path = models.CharField(max_length=1000)
    dim = models.PositiveSmallIntegerField()
    is_active = models.BooleanField(default=False)
    # Cosine at which two images count as near-duplicates *for this model*: models spread images
    # differently (real ViT-B/32: ~0.95; the tiny demo CLIP packs unrelated images at 0.96-0.99).
    # Blank means SEEDBANK_NEAR_DUPLICATE_COSINE.
    near_duplicate_cosine = models.FloatField(null=True, blank=True)
    # Text→image cosine below which a match is noise *for this model*: searches by words hide
    # vector matches under it unless asked (min_score). Blank means SEEDBANK_RELEVANCE_COSINE.
    relevance_cosine = models.FloatField(
        null=True,
        blank=True,
        help_text="hide text→image matches below this cosine (blank: SEEDBANK_RELEVANCE_COSINE)",
    )
    # The best cosine queries with no meaning for this model reach ("qwxzv florbin gnark",
    # words its training never saw): a search by words whose best match is under it finds
    # nothing by meaning. Blank: no such bound (the model did not declare one).
    nonsense_cosine = models.FloatField(
        null=True,
        blank=True,
        help_text="a search by words whose best text→image cosine is below this finds no images "
        "by meaning (blank: no bound)",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_embedder"
            )
        ]

    def __str__(self) -> str:
        return self.name


class PendingEmbedding(models.Model):
    """A record waiting for its vector: the embedding backlog (a transactional outbox).

    Finished records are added here and an embed task is sent; whichever task runs first embeds
    the whole backlog in batches (search.services.embeddings_drain), so a thousand one-image
    jobs cost a few batched forward passes, not a thousand tasks of one image each. A lost
    task loses nothing: the row waits for the next drain (beat sends one every minute).
    """

    image = models.OneToOneField(Image, on_delete=models.CASCADE, primary_key=True)
    queued_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"embedding of #{self.image_id} pending since {self.queued_at:%Y-%m-%d %H:%M:%S}"
