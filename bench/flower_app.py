"""Taskline's Celery app for Flower, made the default app.

Flower's /api/task/result builds `AsyncResult(id)` without an app, in an executor thread;
Taskline's app is created with set_as_current=False, so there it finds Celery's default app,
which has no result backend, and answers 503. Making this app the default is the only change.
"""

from taskline.core.settings import get_settings
from taskline.worker.celery_app import create_celery_app

app = create_celery_app(get_settings())
app.set_default()
app.set_current()
