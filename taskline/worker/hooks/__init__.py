"""The steps of a run, each a small module over one `Run` (hooks.run), none of them Celery's.

The Celery task (worker.base) only calls them, in the order of a run's life.
"""
