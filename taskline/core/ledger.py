"""Ledgers of reserved ranges: which numbers of a ledger are reserved for which task.

A task type that declares an `ExclusiveRange` (serial numbers, say)
reserves its range with its task (core/lua/create.lua); an edit of the task's params swaps it
(edit.lua), and it is given back only when no message of the task can run any more: a
waiting task cancelled or deleted before it ever ran (cancel.lua, delete.lua). A task that
ran keeps its range for good, so the same number is never issued twice, even across restarts
of every process (Redis keeps the ledger; with persistence off, a Redis restart forgets it —
see the README). A message sent without a turn cannot reserve one and is refused (claim.lua).
"""

from dataclasses import dataclass

from redis.asyncio import Redis

from taskline.core.records import Keys
from taskline.core.replies import text


@dataclass(frozen=True, slots=True)
class Allocation:
    """A range of numbers reserved for one task."""

    first: int
    last: int
    task_id: str

    @classmethod
    def parse(cls, entry: str) -> "Allocation":
        first, last, task_id = entry.split(":", 2)
        return cls(int(first), int(last), task_id)


class Ledger:
    """Looks up the reservation of a number."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def find(self, ledger_id: str, number: int) -> Allocation | None:
        """The allocation containing this number, if any."""
        found = await self.redis.zrevrangebyscore(
            self.keys.ledger(ledger_id), number, "-inf", start=0, num=1
        )
        if not found:
            return None
        allocation = Allocation.parse(text(found[0]))
        return allocation if allocation.last >= number else None
