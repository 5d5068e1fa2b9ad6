"""Records now live in generator (generator 0005); collections point at generator.Image."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('gallery', '0005_img2img_inpaint'),
        ('generator', '0005_records_move_here'),
        ('search', '0004_embeddings_point_at_generator_image'),
    ]

    operations = [
        # State only: the tables stay where they are (renamed later, in generator 0006).
        migrations.SeparateDatabaseAndState(
            state_operations=[
        migrations.RemoveField(
            model_name='image',
            name='init_image',
        ),
        migrations.RemoveField(
            model_name='image',
            name='job',
        ),
        migrations.RemoveField(
            model_name='image',
            name='mask',
        ),
        migrations.RemoveField(
            model_name='image',
            name='model_version',
        ),
        migrations.RemoveField(
            model_name='image',
            name='owner',
        ),
        migrations.RemoveField(
            model_name='image',
            name='parent',
        ),
        migrations.RemoveField(
            model_name='reproduction',
            name='image',
        ),
        migrations.AlterField(
            model_name='collection',
            name='cover',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='generator.image'),
        ),
        migrations.AlterField(
            model_name='collectionitem',
            name='image',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='collection_items', to='generator.image'),
        ),
        migrations.RemoveField(
            model_name='reproduction',
            name='job',
        ),
        migrations.RemoveField(
            model_name='reproduction',
            name='requested_by',
        ),
        migrations.AlterField(
            model_name='collection',
            name='images',
            field=models.ManyToManyField(related_name='collections', through='gallery.CollectionItem', to='generator.image'),
        ),
        migrations.DeleteModel(
            name='SourceImage',
        ),
        migrations.DeleteModel(
            name='Image',
        ),
        migrations.DeleteModel(
            name='Reproduction',
        ),
    ],
        ),
    ]
