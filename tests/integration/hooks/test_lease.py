"""hooks.lease: the leases of a process's runs renewed, a run whose renewal is refused marked."""

import pytest

from taskline.core.records import now_ms
from taskline.core.transitions import Claimed
from taskline.worker.hooks.claim import claim
from taskline.worker.hooks.lease import LEASE_MS, LeaseKeeper
from tests.integration.hooks.conftest import Worker

pytestmark = pytest.mark.integration

# A beat that never comes on its own: the test beats (LeaseKeeper.renew) itself.
NEVER = 3600.0


def test_a_held_run_has_its_lease_renewed_until_it_is_released(worker: Worker) -> None:
    created = worker.create()
    task_id = created.snapshot.record.id
    run = worker.run(task_id)
    assert isinstance(claim(run, str(created.turn), False, {}), Claimed)
    keeper = LeaseKeeper(every=NEVER)
    keeper.hold(run)
    lease = worker.keys.lease(task_id)

    worker.client.pexpire(lease, 1000)  # as if the lease were about to lapse
    keeper.renew()
    assert worker.client.pttl(lease) > LEASE_MS - 1000
    assert not run.stale

    keeper.release(run)
    worker.client.pexpire(lease, 1000)
    keeper.renew()
    assert worker.client.pttl(lease) <= 1000  # released: no longer renewed


def test_a_run_whose_lease_another_attempt_took_is_marked_stale(worker: Worker) -> None:
    created = worker.create()
    task_id = created.snapshot.record.id
    run = worker.run(task_id)
    assert isinstance(claim(run, str(created.turn), False, {}), Claimed)
    keeper = LeaseKeeper(every=NEVER)
    keeper.hold(run)

    # The run's host stalled past its lease; a redelivery took the task over.
    worker.client.delete(worker.keys.lease(task_id))
    successor = worker.run(task_id, runner="other@host:2")
    taken = worker.transitions.claim(
        task_id, str(created.turn), True, "reverse", {}, successor.runner, LEASE_MS, False,
        forget_ms=now_ms() + 60_000,
    )  # fmt: skip
    assert isinstance(taken, Claimed) and taken.token == 2

    keeper.renew()
    assert run.stale
    assert worker.field(task_id, "runner") == "other@host:2"  # the successor's, untouched
