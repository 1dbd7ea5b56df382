"""The serial-number ledger: which ranges of which model are reserved for which task.

A range is reserved with its task (core/lua/create.lua), swapped by an edit of the task's
params (edit.lua), and given back only when no message of the task can run any more: a
waiting task cancelled or deleted before it ever ran (cancel.lua, delete.lua). A task that
ran keeps its range for good, so the same serial is never issued twice, even across restarts
of every process (Redis keeps the ledger; with persistence off, a Redis restart forgets it —
see the README). A message sent without a turn cannot reserve one and is refused (claim.lua).
"""

from dataclasses import dataclass

from redis.asyncio import Redis

from taskline.core.records import Keys
from taskline.core.replies import text


@dataclass(frozen=True, slots=True)
class Allocation:
    """A range of serial numbers reserved for one task."""

    first: int
    last: int
    task_id: str

    @classmethod
    def parse(cls, entry: str) -> "Allocation":
        first, last, task_id = entry.split(":", 2)
        return cls(int(first), int(last), task_id)


class SerialLedger:
    """Looks up the reservation of a serial number."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def find(self, code_model: str, number: int) -> Allocation | None:
        """The allocation containing this number, if any."""
        found = await self.redis.zrevrangebyscore(
            self.keys.ledger(code_model), number, "-inf", start=0, num=1
        )
        if not found:
            return None
        allocation = Allocation.parse(text(found[0]))
        return allocation if allocation.last >= number else None
