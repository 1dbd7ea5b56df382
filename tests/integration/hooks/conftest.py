"""Runs of the worker's hooks, each driven alone against the real scripts and Redis.

A test creates a task record as the API does, then plays the worker: a `Run` as the Celery
task makes one for a message, handed to the hook under test. Celery's PROGRESS writes are
kept in a list, and the STARTED and SUCCESS its result backend holds for a run's claim and
finish are what a test puts in `held` (the result backend is Celery's, tested in
test_backend.py).
"""

import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from taskline.builtins import REVERSE
from taskline.core.records import Keys, State
from taskline.core.settings import Settings
from taskline.core.transitions import Created, ResultMeta, Transitions
from taskline.declaring import TaskDeclaration
from taskline.worker.hooks.run import Run

RUNNER = "worker@host:100"


@dataclass
class Worker:
    """What a test plays the worker with: its runs' Celery PROGRESS writes are kept, and
    their claim and finish find Celery's STARTED and SUCCESS in `held`, as the result
    backend holds them."""

    client: redis.Redis
    transitions: Transitions
    keys: Keys
    celery_progress: list[dict[str, Any]] = field(default_factory=list)
    held: dict[State, ResultMeta] = field(default_factory=dict)
    log: logging.Logger = logging.getLogger("tests.hooks")

    def create(self, params: dict[str, Any] | None = None) -> Created:
        created = self.transitions.create(
            str(uuid.uuid4()), REVERSE.name, params or {"text": "abc"}, 5, "alice", None,
            100, None, 1000, None,
        )  # fmt: skip
        assert isinstance(created, Created), created
        return created

    def run(
        self,
        task_id: str,
        declaration: TaskDeclaration | None = REVERSE,
        runner: str = RUNNER,
        **settings: Any,
    ) -> Run:
        """A run of a message of the task, as the Celery task makes it (not claimed yet)."""
        return Run(
            task_id,
            REVERSE.name,
            runner,
            declaration,
            Settings(**settings),
            self.client,
            self.transitions,
            self.celery_progress.append,
            self.held.get,
            self.log,
        )

    def field(self, task_id: str, name: str) -> str | None:
        return self.client.hget(self.keys.task(task_id), name)

    def celery_state(self, task_id: str) -> str | None:
        """The state of Celery's result meta of the task as stored (None: none stored)."""
        meta = self.client.get(self.keys.meta(task_id))
        return None if meta is None else json.loads(meta)["status"]


@pytest.fixture
def worker(client: redis.Redis, transitions: Transitions, keys: Keys) -> Worker:
    return Worker(client, transitions, keys)
