"""Taskline: an HTTP front for Celery work that runs one task at a time, in order."""
