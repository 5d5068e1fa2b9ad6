"""Embeddings point at the moved generator.Image (same table: state only)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('generator', '0005_records_move_here'),
        ('search', '0003_near_duplicate_bound'),
    ]

    operations = [
        # State only: the tables stay where they are (renamed later, in generator 0006).
        migrations.SeparateDatabaseAndState(
            state_operations=[
        migrations.AlterField(
            model_name='imageembedding',
            name='image',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='embeddings', to='generator.image'),
        ),
    ],
        ),
    ]
