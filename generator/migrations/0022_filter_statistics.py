from django.db import migrations

# The planner multiplies the selectivities of a filter's conditions as if independent; a
# recipe's fields are not (a model comes with its size, sampler and steps, NSFW with some
# models). The estimate chooses the vector search's path and sizes its sketch shortlist
# (search.selectors.vector), so an estimate several times too low can cost recall there.
# Multivariate statistics over the columns the search filters compare with constants: the
# most common combinations and functional dependencies, refreshed by every ANALYZE.
STATISTICS = """
CREATE STATISTICS IF NOT EXISTS image_filter_combinations (mcv, dependencies)
ON model_name, scheduler, width, height, steps, nsfw, hidden, status FROM generator_image;
ANALYZE generator_image;
"""
UNSTATISTICS = "DROP STATISTICS IF EXISTS image_filter_combinations;"


class Migration(migrations.Migration):
    dependencies = [
        ("generator", "0021_image_verified"),
    ]

    operations = [migrations.RunSQL(STATISTICS, reverse_sql=UNSTATISTICS)]
