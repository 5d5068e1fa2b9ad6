import pgvector.django.indexes
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

# engine.search_query.CHINESE_CHARACTERS as of this migration (and generator 0019's
# public_chinese): tests/search/test_chinese_graph.py checks the triggers agree with it.
CHINESE = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"

# An embedding's chinese_prompt follows its record's prompt, however either is written
# (services, COPY, restores, plain SQL): set when the vector is stored or moved to another
# record, and again if a prompt ever changes. Then the vectors already stored are marked
# (at a million records ~50,000 rows, each new row version joining the whole graph: most of
# the 5.5 min this migration took there on 2 cores).
TRIGGERS = f"""
CREATE OR REPLACE FUNCTION seedbank_embedding_chinese_prompt() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.chinese_prompt := coalesce(
        (SELECT prompt ~ '{CHINESE}' FROM generator_image WHERE id = NEW.image_id), false
    );
    RETURN NEW;
END
$$;
CREATE TRIGGER embedding_sets_chinese_prompt
BEFORE INSERT OR UPDATE OF image_id ON search_imageembedding
FOR EACH ROW EXECUTE FUNCTION seedbank_embedding_chinese_prompt();

CREATE OR REPLACE FUNCTION seedbank_prompt_sets_embedding_language() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE search_imageembedding SET chinese_prompt = (NEW.prompt ~ '{CHINESE}')
    WHERE image_id = NEW.id AND chinese_prompt IS DISTINCT FROM (NEW.prompt ~ '{CHINESE}');
    RETURN NULL;
END
$$;
CREATE TRIGGER prompt_sets_embedding_language
AFTER UPDATE OF prompt ON generator_image
FOR EACH ROW WHEN (OLD.prompt IS DISTINCT FROM NEW.prompt)
EXECUTE FUNCTION seedbank_prompt_sets_embedding_language();

UPDATE search_imageembedding AS embedding SET chinese_prompt = true
FROM generator_image AS image
WHERE image.id = embedding.image_id AND image.prompt ~ '{CHINESE}';
"""
UNTRIGGER = """
DROP TRIGGER IF EXISTS prompt_sets_embedding_language ON generator_image;
DROP FUNCTION IF EXISTS seedbank_prompt_sets_embedding_language();
DROP TRIGGER IF EXISTS embedding_sets_chinese_prompt ON search_imageembedding;
DROP FUNCTION IF EXISTS seedbank_embedding_chinese_prompt();
"""


class Migration(migrations.Migration):
    # The graph is built concurrently: vectors keep being written while it builds.
    atomic = False

    dependencies = [
        ("generator", "0021_image_verified"),
        ("search", "0010_hnsw_ef_construction_128"),
    ]

    operations = [
        migrations.AddField(
            model_name="imageembedding",
            name="chinese_prompt",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.RunSQL(TRIGGERS, reverse_sql=UNTRIGGER),
        AddIndexConcurrently(
            model_name="imageembedding",
            index=pgvector.django.indexes.HnswIndex(
                condition=models.Q(("chinese_prompt", True)),
                ef_construction=128,
                fields=["embedding"],
                m=16,
                name="embedding_hnsw_chinese",
                opclasses=["vector_cosine_ops"],
            ),
        ),
    ]
