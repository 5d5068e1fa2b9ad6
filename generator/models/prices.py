"""What an hour of each device costs (edited by staff in the admin)."""

from __future__ import annotations

from django.db import models


class DevicePrice(models.Model):
    """What an hour of a device costs, matched against the device name a worker records."""

    name_contains = models.CharField(
        max_length=100, unique=True, help_text="Case-insensitive part of the device name, e.g. A100"
    )
    usd_per_hour = models.DecimalField(max_digits=8, decimal_places=4)
    notes = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name_contains"]

    def __str__(self) -> str:
        return f"{self.name_contains}: {self.usd_per_hour} USD/h"
