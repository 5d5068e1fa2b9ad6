"""Every record's sketch (generator 0018) from the active model's vector: search writes them
from now on (search.services.image_sketches_update); this fills the ones before. At a million
records a few minutes (each row is rewritten once); autovacuum then marks the pages visible for
the index-only scans."""

from django.db import migrations

SKETCHES = """
UPDATE generator_image AS image
SET sketch = binary_quantize(embedding.embedding)::bit(512)
FROM search_imageembedding AS embedding
WHERE embedding.image_id = image.id
    AND embedding.model_name = (SELECT name FROM search_embeddingmodel WHERE is_active)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("generator", "0018_image_sketch"),
        ("search", "0008_nonsense_cosine"),
    ]

    operations = [migrations.RunSQL(SKETCHES, migrations.RunSQL.noop)]
