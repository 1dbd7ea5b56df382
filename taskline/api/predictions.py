"""Expected starts and ends of tasks (core.estimates), read for `GET /tasks/{id}/eta` and
`GET /queue`.

Not on the hot read: a plain `GET /tasks/{id}` is one round trip (taskline.api.hotpaths),
and a prediction needs the line ahead of the task, the records of the tasks in it and their
types' run times: three more. They are read only where a client asks for a prediction.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from taskline.api.store import TaskStore
from taskline.core.estimates import (
    Expected,
    bucket_of,
    parse_time,
    remaining,
    run_estimate,
    running_expected,
    waiting_expected,
)
from taskline.core.records import WAITING, Snapshot, State, TaskRecord
from taskline.core.registry import Registry
from taskline.core.settings import Settings

RUNNING = frozenset({State.STARTED, State.PROGRESS})


class Predictor:
    """Estimates for the tasks of a store, from their types' recorded run times."""

    def __init__(self, store: TaskStore, tasks: Registry, settings: Settings) -> None:
        self.store = store
        self.tasks = tasks
        self.settings = settings

    async def estimates(self, records: Sequence[TaskRecord]) -> dict[str, float]:
        """Each record's run estimate (s), by id: the run times of their types read at once."""
        keys = self.store.keys
        lists: dict[str, tuple[str, str]] = {}  # id -> (its type's list, its bucket's or '')
        for record in records:
            bucket = bucket_of(self.tasks.get(record.name), record.params)
            by_bucket = keys.runtimes(record.name, bucket) if bucket else ""
            lists[record.id] = (keys.runtimes(record.name), by_bucket)
        named = list(dict.fromkeys(k for pair in lists.values() for k in pair if k))
        read = await self.store.runtimes(named, self.settings.estimate_samples)
        found = dict(zip(named, read, strict=True))
        default = self.settings.estimate_default_seconds
        return {
            record.id: run_estimate(
                record.params,
                found[lists[record.id][0]],
                found.get(lists[record.id][1], []),
                default,
            )
            for record in records
        }

    async def of_task(self, snapshot: Snapshot) -> Expected | None:
        """When this task should start and end; None once it ended."""
        record = snapshot.record
        now = datetime.now(UTC)
        if record.state in RUNNING:
            own = (await self.estimates([record]))[record.id]
            started = parse_time(record.started_at)
            return running_expected(started, remaining(started, record.progress, own, now), now)
        if record.state not in WAITING:
            return None
        running_ids, ahead_ids, count = await self.store.ahead(
            record.line,
            record.id,
            record.priority,
            record.state is State.QUEUED,
            self.settings.estimate_ahead,
        )
        found = await self.store.read_many(running_ids + ahead_ids)
        by_id = {s.record.id: s.record for s in found}
        running = [by_id[i] for i in running_ids if i in by_id]
        ahead = [by_id[i] for i in ahead_ids if i in by_id]
        estimated = await self.estimates([record, *running, *ahead])
        busy_for = max(
            (
                remaining(parse_time(r.started_at), r.progress, estimated[r.id], now)
                for r in running
            ),
            default=0.0,
        )
        return waiting_expected(
            now,
            busy_for,
            [estimated[r.id] for r in ahead],
            max(count - len(ahead_ids), 0),
            estimated[record.id],
            parse_time(record.not_before) if record.state is State.SCHEDULED else None,
            running=len(running),
        )

    async def of_line(
        self, running: Sequence[Snapshot], upcoming: Sequence[Snapshot]
    ) -> dict[str, Expected]:
        """The running tasks of a line and its next tasks, in line order, each after the ones
        before it."""
        records = [s.record for s in (*running, *upcoming)]
        if not records:
            return {}
        estimated = await self.estimates(records)
        now = datetime.now(UTC)
        out: dict[str, Expected] = {}
        busy_for = 0.0
        for snapshot in running:
            r = snapshot.record
            started = parse_time(r.started_at)
            left = remaining(started, r.progress, estimated[r.id], now)
            out[r.id] = running_expected(started, left, now)
            busy_for = max(busy_for, left)
        ahead: list[float] = []
        for snapshot in upcoming:
            r = snapshot.record
            out[r.id] = waiting_expected(
                now, busy_for, ahead, 0, estimated[r.id], running=len(running)
            )
            ahead.append(estimated[r.id])
        return out
