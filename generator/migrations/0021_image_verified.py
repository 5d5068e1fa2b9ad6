from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

# Image.verified follows the reproductions, however they are written (services, restores,
# imports, plain SQL): after each insert, delete or change of verdict or record, the records
# involved are set to whether any of their reproductions is bit-identical. Only rows whose
# value changes are written.
TRIGGER = """
CREATE OR REPLACE FUNCTION seedbank_image_verified() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    record_id bigint;
BEGIN
    FOREACH record_id IN ARRAY array_remove(ARRAY[OLD.image_id, NEW.image_id], NULL) LOOP
        UPDATE generator_image AS image SET verified = found.verified
        FROM (
            SELECT EXISTS (
                SELECT 1 FROM generator_reproduction
                WHERE image_id = record_id AND verdict = 'bit-identical'
            ) AS verified
        ) AS found
        WHERE image.id = record_id AND image.verified IS DISTINCT FROM found.verified;
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TRIGGER reproduction_sets_image_verified
AFTER INSERT OR DELETE OR UPDATE OF verdict, image_id ON generator_reproduction
FOR EACH ROW EXECUTE FUNCTION seedbank_image_verified();
UPDATE generator_image SET verified = true
WHERE id IN (SELECT image_id FROM generator_reproduction WHERE verdict = 'bit-identical');
"""
UNTRIGGER = """
DROP TRIGGER IF EXISTS reproduction_sets_image_verified ON generator_reproduction;
DROP FUNCTION IF EXISTS seedbank_image_verified();
"""


class Migration(migrations.Migration):
    # The index is built concurrently: records keep being written while it builds.
    atomic = False

    dependencies = [
        ("generator", "0020_lora_heads_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="image",
            name="verified",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.RunSQL(TRIGGER, reverse_sql=UNTRIGGER),
        AddIndexConcurrently(
            model_name="image",
            index=models.Index(
                condition=models.Q(("hidden", False), ("status", "ready"), ("verified", True)),
                fields=["-created_at"],
                include=("id", "sketch"),
                name="public_verified",
            ),
        ),
    ]
