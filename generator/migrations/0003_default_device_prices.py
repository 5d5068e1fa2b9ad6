from decimal import Decimal

from django.db import migrations

from engine.pricing import DEFAULT_DEVICE_PRICES


def add_defaults(apps, schema_editor):
    DevicePrice = apps.get_model("generator", "DevicePrice")
    for pattern, (price, notes) in DEFAULT_DEVICE_PRICES.items():
        DevicePrice.objects.get_or_create(
            name_contains=pattern, defaults={"usd_per_hour": Decimal(price), "notes": notes}
        )


class Migration(migrations.Migration):
    dependencies = [("generator", "0002_device_prices")]

    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
