"""The environment JSON moves out of the image table into its own (narrow image rows)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generator", "0008_job_leases"),
    ]

    operations = [
        migrations.CreateModel(
            name="ImageEnvironment",
            fields=[
                (
                    "image",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="environment_record",
                        serialize=False,
                        to="generator.image",
                    ),
                ),
                ("data", models.JSONField(default=dict)),
            ],
        ),
        # One INSERT ... SELECT: no rows through Python, so it runs at archive scale.
        migrations.RunSQL(
            sql="""
                INSERT INTO generator_imageenvironment (image_id, data)
                SELECT id, environment FROM generator_image WHERE environment <> '{}'::jsonb
            """,
            reverse_sql="""
                UPDATE generator_image SET environment = e.data
                FROM generator_imageenvironment e WHERE e.image_id = generator_image.id
            """,
        ),
        migrations.RemoveField(
            model_name="image",
            name="environment",
        ),
    ]
