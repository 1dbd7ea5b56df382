"""Stored tasks for the listing figures, written straight into Redis.

The records go through the same `create` transition the API runs (taskline/core/transitions.py), in
pipelines, so their indexes, line, history and event streams are exactly what the API would
have left, at a small fraction of the time. No message is published: no worker runs there.
"""

from __future__ import annotations

import time
import uuid

import redis

from taskline.core.records import Keys
from taskline.core.searchable import searched
from taskline.core.transitions import Transitions

BATCH = 2000
# The searchable params of the built-ins (taskline.builtins), indexed as the API would.
SEARCHABLE = {"reverse": ("text",)}
# When a cancelled stored task would be forgotten: never, while a run lasts.
FOREVER_MS = 2**52


def fill(client: redis.Redis, prefix: str, count: int, owner: str, cancel_every: int = 0) -> float:
    """Create `count` QUEUED tasks of `owner` under `prefix` (every `cancel_every`-th then
    cancelled, for searches by state); returns the seconds it took."""
    transitions = Transitions(client, Keys(prefix))
    start = time.perf_counter()
    made = 0
    while made < count:
        with client.pipeline(transaction=False) as pipe:
            for i in range(made, min(count, made + BATCH)):
                name = "reverse" if i % 2 else "leibniz_pi"
                # 500 texts, each of 100 tasks: a search by one fills a page of 50
                params = {"text": f"text-{i % 1000}"} if i % 2 else {"digits": 6}
                task_id = str(uuid.uuid4())
                create = transitions.calls.create(
                    task_id,
                    name,
                    params,
                    5,
                    owner,
                    None,
                    count + 1,
                    None,
                    count + 1,
                    None,
                    searched=searched(name, SEARCHABLE.get(name, ()), params, 256),
                )
                transitions.queue(pipe, create)
                if cancel_every and i % cancel_every == 0:
                    cancel = transitions.calls.cancel(task_id, 0, FOREVER_MS)
                    transitions.queue(pipe, cancel)
            pipe.execute()
        made = min(count, made + BATCH)
    return time.perf_counter() - start
