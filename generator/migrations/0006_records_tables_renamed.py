"""The moved records' tables take their new app's names (gallery_image -> generator_image, ...)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('generator', '0005_records_move_here'),
        ('gallery', '0006_records_moved_to_generator'),
    ]

    operations = [
        migrations.AlterModelTable(
            name='image',
            table=None,
        ),
        migrations.AlterModelTable(
            name='reproduction',
            table=None,
        ),
        migrations.AlterModelTable(
            name='sourceimage',
            table=None,
        ),
    ]
