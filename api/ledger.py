"""The serial-number ledger: which ranges of which model were given to which task.

Ranges are reserved atomically when a generation is accepted, so the same serial is never
issued twice, even across restarts of every process (Redis keeps the ledger; with persistence
off, a Redis restart forgets it — see the README). Reservations are kept when a task is
cancelled or fails: a range is spent once handed out.
"""

from dataclasses import dataclass

from redis.asyncio import Redis

from api.store import redis_errors

# ARGV: ledger key, first, last, task id. Returns the overlapping entry, or false (reserved).
# Ranges never overlap, so the one starting last at or below `last` is the only candidate.
_RESERVE = """
local below = redis.call('ZREVRANGEBYSCORE', ARGV[1], ARGV[3], '-inf', 'LIMIT', 0, 1)
if below[1] then
  local _, last = string.match(below[1], '^(%d+):(%d+):')
  if tonumber(last) >= tonumber(ARGV[2]) then return below[1] end
end
redis.call('ZADD', ARGV[1], ARGV[2], ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[4])
return false
"""


@dataclass(frozen=True, slots=True)
class Allocation:
    """A range of serial numbers handed to one task."""

    first: int
    last: int
    task_id: str

    @classmethod
    def parse(cls, entry: str) -> "Allocation":
        first, last, task_id = entry.split(":", 2)
        return cls(int(first), int(last), task_id)

    def member(self) -> str:
        return f"{self.first}:{self.last}:{self.task_id}"


class SerialLedger:
    """Reserve, release and look up serial ranges per model."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._reserve = redis.register_script(_RESERVE)

    def _key(self, code_model: str) -> str:
        return f"{self.prefix}serials:{code_model}"

    async def reserve(self, code_model: str, wanted: Allocation) -> Allocation | None:
        """Reserve the range; None if done, else the allocation it overlaps."""
        with redis_errors():
            clash = await self._reserve(
                args=[self._key(code_model), wanted.first, wanted.last, wanted.task_id]
            )
        return Allocation.parse(clash) if clash else None

    async def release(self, code_model: str, allocation: Allocation) -> None:
        """Give a range back (its task was never accepted)."""
        with redis_errors():
            await self.redis.zrem(self._key(code_model), allocation.member())

    async def find(self, code_model: str, number: int) -> Allocation | None:
        """The allocation containing this number, if any."""
        with redis_errors():
            found = await self.redis.zrevrangebyscore(
                self._key(code_model), number, "-inf", start=0, num=1
            )
        if not found:
            return None
        allocation = Allocation.parse(found[0])
        return allocation if allocation.last >= number else None
