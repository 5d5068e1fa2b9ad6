"""Uploaded init images and masks belong to their uploader (others use them through records)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('generator', '0006_records_tables_renamed'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='sourceimage',
            name='source_once_per_kind',
        ),
        migrations.AddField(
            model_name='sourceimage',
            name='owner',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='sourceimage',
            constraint=models.UniqueConstraint(fields=('owner', 'pixel_sha256', 'kind'), name='source_once_per_owner_and_kind'),
        ),
    ]
