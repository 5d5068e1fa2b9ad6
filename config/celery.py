"""The Celery app. Workers: `celery -A config worker -Q gpu,cpu --pool solo`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("seedbank")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
