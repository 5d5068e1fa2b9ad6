import pgvector.django.indexes
from django.db import migrations

# The graph's build parameter only: new vectors join the graph at ef_construction 128 at once,
# the vectors already in it are re-linked by the next `manage.py search_reindex` (REINDEX
# CONCURRENTLY: searches and writes go on; ~12 min at 1M records with one parallel worker).
# Rebuilding here would hold the vectors' table locked for the whole build.
SET_128 = "ALTER INDEX embedding_hnsw_cosine SET (ef_construction = 128)"
SET_64 = "ALTER INDEX embedding_hnsw_cosine SET (ef_construction = 64)"


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0009_image_sketches"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(SET_128, reverse_sql=SET_64)],
            state_operations=[
                migrations.RemoveIndex(model_name="imageembedding", name="embedding_hnsw_cosine"),
                migrations.AddIndex(
                    model_name="imageembedding",
                    index=pgvector.django.indexes.HnswIndex(
                        ef_construction=128,
                        fields=["embedding"],
                        m=16,
                        name="embedding_hnsw_cosine",
                        opclasses=["vector_cosine_ops"],
                    ),
                ),
            ],
        ),
    ]
