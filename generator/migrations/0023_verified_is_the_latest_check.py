from importlib import import_module

from django.db import migrations

# Image.verified now means what the record page, eviction and signing mean by it: the record's
# latest finished reproduction (pending ones aside; the newest finished_at, as
# generator.selectors.records.image_last_reproduction orders them) is bit-identical. Migration
# 0021 set it when any reproduction was, so a record whose later check differed stayed
# "verified:yes" in search while its page said otherwise. Every record with a reproduction is
# recomputed; only rows whose value changes are written.
LATEST = """
coalesce((
    SELECT verdict = 'bit-identical' FROM generator_reproduction
    WHERE image_id = {record} AND verdict <> 'pending'
    ORDER BY finished_at DESC NULLS FIRST, id DESC LIMIT 1
), false)
"""
TRIGGER = f"""
CREATE OR REPLACE FUNCTION seedbank_image_verified() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    record_id bigint;
BEGIN
    FOREACH record_id IN ARRAY array_remove(ARRAY[OLD.image_id, NEW.image_id], NULL) LOOP
        UPDATE generator_image AS image SET verified = found.verified
        FROM (SELECT {LATEST.format(record="record_id")} AS verified) AS found
        WHERE image.id = record_id AND image.verified IS DISTINCT FROM found.verified;
    END LOOP;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS reproduction_sets_image_verified ON generator_reproduction;
CREATE TRIGGER reproduction_sets_image_verified
AFTER INSERT OR DELETE OR UPDATE OF verdict, image_id, finished_at ON generator_reproduction
FOR EACH ROW EXECUTE FUNCTION seedbank_image_verified();
UPDATE generator_image AS image SET verified = found.verified
FROM (
    SELECT checked.id, {LATEST.format(record="checked.id")} AS verified
    FROM (SELECT DISTINCT image_id AS id FROM generator_reproduction) AS checked
) AS found
WHERE image.id = found.id AND image.verified IS DISTINCT FROM found.verified;
"""
# Back to 0021's meaning (any bit-identical reproduction): its own trigger and backfill, which
# marks every record 0021 would; those it does not mark were unverified under both meanings.
ANY_TRIGGER = (
    "DROP TRIGGER IF EXISTS reproduction_sets_image_verified ON generator_reproduction;"
    + import_module("generator.migrations.0021_image_verified").TRIGGER
)


class Migration(migrations.Migration):
    dependencies = [
        ("generator", "0022_filter_statistics"),
    ]

    operations = [migrations.RunSQL(TRIGGER, reverse_sql=ANY_TRIGGER)]
