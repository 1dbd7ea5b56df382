"""Submitting a task: validate against the catalogue, record it, then publish it.

The record is written before the message so the worker always finds it; if the publish is not
confirmed the record is removed again, so a 503 leaves no half-created task behind. A turn
whose publisher dies before the confirm stays in the outbox for the scheduler to publish.
"""

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from api.errors import ConflictError, InvalidParamsError, TooManyRequestsError
from api.ledger import Allocation, SerialLedger
from api.producer import Producer
from api.store import Snapshot, TaskStore
from worker.catalog import CATALOG, TaskName
from worker.records import iso, to_ms
from worker.settings import Settings

SERIALS = TaskName.GENERATE_SERIALS.value


def validate_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The params with defaults filled in, or InvalidParamsError listing what is wrong."""
    try:
        model = CATALOG[name].params.model_validate(params)
    except ValidationError as exc:
        raise InvalidParamsError(
            [
                {**err, "loc": ["body", "params", *err["loc"]]}
                for err in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
        ) from exc
    return model.model_dump(mode="json")


def moment(value: datetime | None) -> tuple[str, int] | None:
    """A not_before as stored: ISO text and epoch milliseconds."""
    return None if value is None else (iso(value), to_ms(value))


class Submitter:
    """Puts tasks in line and republishes their turns."""

    def __init__(
        self, store: TaskStore, producer: Producer, ledger: SerialLedger, settings: Settings
    ) -> None:
        self.settings = settings
        self.store = store
        self.producer = producer
        self.ledger = ledger

    async def publish_turn(self, snapshot: Snapshot, turn: int) -> None:
        """Publish the task's current turn and take it off the outbox once confirmed."""
        record = snapshot.record
        await self.producer.publish(
            record["id"],
            record["name"],
            json.loads(record["params"]),
            int(record["priority"]),
            turn,
        )
        self.store.published(record["id"])

    async def _reserve_serials(self, task_id: str, params: dict[str, Any]) -> Allocation:
        wanted = Allocation(params["number"], params["number"] + params["count"] - 1, task_id)
        clash = await self.ledger.reserve(params["code_model"], wanted)
        if clash:
            raise ConflictError(
                f"serial numbers {wanted.first}–{wanted.last} of model "
                f"{params['code_model']} overlap {clash.first}–{clash.last}, already issued "
                f"to task {clash.task_id}"
            )
        return wanted

    async def submit(
        self,
        name: str,
        params: dict[str, Any],
        owner: str,
        priority: int = 5,
        not_before: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Snapshot:
        """Create a task and put it in line (or in the postponed set); returns it.

        Retrying with the same Idempotency-Key and body answers the same task again.
        """
        params = validate_params(name, params)
        digest = hashlib.sha256(
            json.dumps([name, params, priority, not_before and iso(not_before)]).encode()
        ).hexdigest()
        idempotency = (idempotency_key, digest) if idempotency_key else None
        if idempotency:
            seen = await self.store.idempotent(owner, idempotency_key)
            if seen:
                return await self._again(seen, digest)
        task_id = str(uuid.uuid4())
        serials = await self._reserve_serials(task_id, params) if name == SERIALS else None
        try:
            outcome = await self.store.create(
                task_id,
                name,
                params,
                priority,
                owner,
                moment(not_before),
                self.settings.max_waiting_per_user,
                idempotency,
                self.settings.creations_per_minute,
            )
            if outcome[0] == "limited":
                raise TooManyRequestsError(
                    f"more than {self.settings.creations_per_minute} tasks a minute",
                    headers={"Retry-After": str(outcome[1])},
                )
            if outcome[0] == "full":
                raise TooManyRequestsError(
                    f"at most {self.settings.max_waiting_per_user} waiting tasks per user",
                    headers={"Retry-After": "10"},
                )
            if outcome[0] == "existing":  # a concurrent retry with the same key won the race
                if serials:
                    await self.ledger.release(params["code_model"], serials)
                return await self._again(outcome[1:], digest)
            try:
                snapshot = outcome[2]
                if outcome[1]:
                    await self.publish_turn(snapshot, int(outcome[1]))
            except Exception:
                await self.store.delete(task_id, force=True)
                raise
        except BaseException:
            if serials:
                await self.ledger.release(params["code_model"], serials)
            raise
        return snapshot

    async def _again(self, seen: list[str], digest: str) -> Snapshot:
        """The task an Idempotency-Key already created, if this request is the same one."""
        task_id, seen_digest = seen
        if seen_digest != digest:
            raise InvalidParamsError(
                "this Idempotency-Key was used for a different request; use a new key"
            )
        existing = await self.store.read(task_id)
        if existing is None:
            raise ConflictError(
                f"the task created with this Idempotency-Key ({task_id}) was deleted"
            )
        return existing
