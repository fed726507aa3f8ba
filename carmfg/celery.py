"""The Celery application, wired the standard Django way (settings prefix CELERY_)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carmfg.settings")

app = Celery("carmfg")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
