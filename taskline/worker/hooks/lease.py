"""While a run is alive: its lease on its task, renewed by one thread per process.

A run holds a lease on its task; a redelivered message of the task is held while the lease
is alive (hooks.claim), and only a lapsed lease means the run died. A thread renews it, so
that a task body busy computing still renews; one thread per process rather than one per
run, so that starting a run costs no thread. A renewal refused as stale (another attempt
holds the task: this run's lease lapsed while it was alive, a stalled host) marks the run,
which then stops at its next step (hooks.cancellation).
"""

import os
import threading
import time

import redis

from taskline.worker.hooks.run import Run

# A run's lease lapses this long after its pool child stopped renewing it (died); renewed by
# a thread every LEASE_RENEW_SECONDS, so a few missed beats (a busy host) do not lapse it.
LEASE_MS = 10_000
LEASE_RENEW_SECONDS = 2.0


class LeaseKeeper:
    """Renews the leases of the runs a process holds, every `every` seconds."""

    def __init__(self, every: float = LEASE_RENEW_SECONDS) -> None:
        self.every = every
        self._held: dict[str, Run] = {}
        self._pid = 0

    def hold(self, run: Run) -> None:
        if self._pid != os.getpid():  # first run in this (forked) process
            self._pid = os.getpid()
            self._held = {}
            threading.Thread(target=self._renew_forever, daemon=True).start()
        self._held[run.task_id] = run

    def release(self, run: Run) -> None:
        self._held.pop(run.task_id, None)

    def renew(self) -> None:
        """One beat: renew every lease held, marking stale the runs whose renewal is refused."""
        for run in list(self._held.values()):
            try:
                if not run.transitions.renew(run.task_id, run.token, run.runner, LEASE_MS):
                    run.stale = True
            except redis.RedisError:
                pass  # the lease outlives a few missed beats; the next one tries again

    def _renew_forever(self) -> None:
        while True:
            time.sleep(self.every)
            self.renew()
