"""Records (SourceImage, Image, Reproduction) move from gallery to generator, so that apps depend
one way (generator <- search <- gallery). Their tables are kept; generator 0006 renames them."""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


MOVED = ("image", "sourceimage", "reproduction")


def _relabel(apps, schema_editor, old: str, new: str) -> None:
    # Permissions and admin log entries point at content types: move them with the models.
    content_type = apps.get_model("contenttypes", "ContentType")
    if content_type.objects.filter(app_label=new, model__in=MOVED).exists():
        return
    content_type.objects.filter(app_label=old, model__in=MOVED).update(app_label=new)


def content_types_follow(apps, schema_editor) -> None:
    _relabel(apps, schema_editor, "gallery", "generator")


def content_types_go_back(apps, schema_editor) -> None:
    _relabel(apps, schema_editor, "generator", "gallery")


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('gallery', '0005_img2img_inpaint'),
        ('generator', '0004_model_registry'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # State only: the tables stay where they are (renamed later, in generator 0006).
        migrations.SeparateDatabaseAndState(
            state_operations=[
        migrations.CreateModel(
            name='Image',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('model_name', models.CharField(max_length=300)),
                ('model_digest', models.CharField(max_length=64)),
                ('mode', models.CharField(choices=[('txt2img', 'text to image'), ('img2img', 'image to image'), ('inpaint', 'inpainting')], default='txt2img', max_length=20)),
                ('prompt', models.TextField()),
                ('negative_prompt', models.TextField(blank=True)),
                ('seed', models.BigIntegerField()),
                ('scheduler', models.CharField(max_length=40)),
                ('steps', models.PositiveSmallIntegerField()),
                ('guidance', models.FloatField()),
                ('width', models.PositiveSmallIntegerField()),
                ('height', models.PositiveSmallIntegerField()),
                ('precision', models.CharField(default='fp32', max_length=8)),
                ('batch_size', models.PositiveSmallIntegerField(default=1)),
                ('batch_index', models.PositiveSmallIntegerField(default=0)),
                ('strength', models.FloatField(blank=True, null=True)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('ready', 'Ready'), ('failed', 'Failed')], default='pending', max_length=20)),
                ('image_file', models.FileField(blank=True, upload_to='images/')),
                ('thumbnail', models.FileField(blank=True, upload_to='thumbnails/')),
                ('evicted_at', models.DateTimeField(blank=True, null=True)),
                ('pixel_sha256', models.CharField(blank=True, db_index=True, max_length=64)),
                ('environment', models.JSONField(blank=True, default=dict)),
                ('hidden', models.BooleanField(default=False)),
                ('nsfw', models.BooleanField(default=False)),
                ('featured', models.BooleanField(default=False)),
                ('search_vector', django.contrib.postgres.search.SearchVectorField(editable=False, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('job', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='images', to='generator.renderjob')),
                ('model_version', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='images', to='generator.modelversion')),
                ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                ('parent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='children', to='generator.image')),
            ],
            options={
                'db_table': 'gallery_image',
            },
        ),
        migrations.CreateModel(
            name='Reproduction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('purpose', models.CharField(choices=[('check', 'Check'), ('restore', 'Restore')], default='check', max_length=20)),
                ('whole_batch', models.BooleanField(default=True)),
                ('verdict', models.CharField(choices=[('pending', 'Pending'), ('bit-identical', 'Bit Identical'), ('visually-identical', 'Visually Identical'), ('differs', 'Differs'), ('failed', 'Failed')], default='pending', max_length=30)),
                ('image_file', models.FileField(blank=True, upload_to='reproductions/')),
                ('pixel_sha256', models.CharField(blank=True, max_length=64)),
                ('max_abs_diff', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('psnr', models.FloatField(blank=True, null=True)),
                ('environment', models.JSONField(blank=True, default=dict)),
                ('environment_diff', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('image', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reproductions', to='generator.image')),
                ('job', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='reproduction', to='generator.renderjob')),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'gallery_reproduction',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='SourceImage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('pixel_sha256', models.CharField(max_length=64)),
                ('kind', models.CharField(choices=[('init', 'Init'), ('mask', 'Mask')], max_length=10)),
                ('file', models.FileField(upload_to='sources/')),
                ('width', models.PositiveIntegerField()),
                ('height', models.PositiveIntegerField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'db_table': 'gallery_sourceimage',
                'constraints': [models.UniqueConstraint(fields=('pixel_sha256', 'kind'), name='source_once_per_kind')],
            },
        ),
        migrations.AddField(
            model_name='image',
            name='init_image',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='generator.sourceimage'),
        ),
        migrations.AddField(
            model_name='image',
            name='mask',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='generator.sourceimage'),
        ),
        migrations.AddIndex(
            model_name='image',
            index=django.contrib.postgres.indexes.GinIndex(fields=['search_vector'], name='image_search_vector_gin'),
        ),
        migrations.AddIndex(
            model_name='image',
            index=models.Index(condition=models.Q(('hidden', False), ('status', 'ready')), fields=['-created_at', '-id'], name='gallery_ready_newest'),
        ),
    ],
        ),
        migrations.RunPython(content_types_follow, content_types_go_back, elidable=True),
    ]
