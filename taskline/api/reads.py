"""Reads of single tasks gathered: those asked in one turn of the event loop cost one script.

Clients poll `GET /tasks/{id}` more than anything else, and under load many such reads are
asked between two turns of the event loop; each paid a Redis round trip of its own (a pooled
connection, a command packed, sent, read and parsed), most of a read's cost. Gathered, they
go as one read script, a task asked by several of them read once. A gathered read is sent
after every read in it was asked, so each sees every change made before it was asked.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterator

from taskline.core.records import Snapshot

# Tasks read by one script at most: a batch blocks Redis while it runs (a page of the listing
# reads up to 500), and more asked meanwhile go in the next one.
READ_BATCH = 50

ReadMany = Callable[[list[str]], Awaitable[list[Snapshot]]]
# task id → the reads waiting for it
Batch = dict[str, list[asyncio.Future[Snapshot | None]]]


class GatheredReads:
    """Single-task reads asked in one turn of the event loop, read by one call of `read_many`
    (which leaves unknown tasks out, and may raise: every read of the batch then raises)."""

    def __init__(self, read_many: ReadMany, most: int = READ_BATCH) -> None:
        self._read_many = read_many
        self._most = most
        self._waiting: Batch = {}
        self._batches: set[asyncio.Task[None]] = set()

    def read(self, task_id: str) -> Awaitable[Snapshot | None]:
        """The task (None if unknown), read with the others asked before the loop turns."""
        loop = asyncio.get_running_loop()
        found: asyncio.Future[Snapshot | None] = loop.create_future()
        waiters = self._waiting.get(task_id)
        if waiters is None:
            if len(self._waiting) >= self._most:
                self._send()  # full: it goes now, and this read opens the next batch
            if not self._waiting:  # the first of a batch sends it once the loop turns
                loop.call_soon(self._send_once, self._waiting)
            waiters = self._waiting[task_id] = []
        waiters.append(found)
        return found

    def _send_once(self, batch: Batch) -> None:
        if batch is self._waiting:  # not sent already for being full
            self._send()

    def _send(self) -> None:
        batch, self._waiting = self._waiting, {}
        sending = asyncio.ensure_future(self._answer(batch))
        self._batches.add(sending)
        sending.add_done_callback(self._batches.discard)

    async def _answer(self, batch: Batch) -> None:
        try:
            snapshots = await self._read_many(list(batch))
        except asyncio.CancelledError:
            for waiter in _each(batch):
                waiter.cancel()
            raise
        except Exception as exc:
            for waiter in _each(batch):
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        found = {snapshot.record.id: snapshot for snapshot in snapshots}
        for task_id, waiters in batch.items():
            for waiter in waiters:
                if not waiter.done():  # its request may have gone
                    waiter.set_result(found.get(task_id))


def _each(batch: Batch) -> Iterator[asyncio.Future[Snapshot | None]]:
    return (waiter for waiters in batch.values() for waiter in waiters)
