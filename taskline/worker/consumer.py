"""The worker's consumer on replicated (quorum) queues: each turn is bound to its line's head.

A quorum queue delivers in the order messages came (RabbitMQ 3.x keeps no priorities, 4.0-4.2
two levels), so the order of the line cannot be the queue's. Every message is taken as a turn,
not as the task it was sent for: when it is delivered, before Celery makes a request of it,
the message is bound to the task to run now on the line of the queue it came from
(core/lua/head.lua: a task of that line that started and has not ended, else the first of the
line), with that task's id, type and params. Celery then sees
that task everywhere: its events, its result, its time limits, a revoke by its id. The claim
(worker.base) takes it as the turn of whatever task it names now, and passes on a turn that
comes to nothing while tasks wait, so no waiting task is ever left without a message.

A message sent without a turn (by name, from another tool) is left as it is: it brings its
own task, as on a classic queue. Should Redis not answer at delivery, the message keeps the
task it was sent for, which then runs if it still waits.
"""

import json
import logging
from collections.abc import Callable
from typing import Any

import redis
from celery.utils.saferepr import saferepr
from celery.worker.consumer import Consumer
from kombu.message import Message

from taskline.core import redis_clients
from taskline.core.lines import Line
from taskline.core.records import TURN_HEADER, Keys
from taskline.core.settings import lines_of
from taskline.core.transitions import Head, Transitions
from taskline.worker.celery_app import TasklineCelery

log = logging.getLogger("taskline.worker.consumer")


def bind(message: Message, head: Head | None) -> bool:
    """Make a task message the turn of `head` (its id, type and params); False when it is
    left as it was (no head, the same task, or a message without a turn)."""
    headers = message.headers
    if head is None or TURN_HEADER not in headers or headers.get("id") == head.task_id:
        return False
    sent_for = headers.get("id")
    # kombu's stub types the body as text and lacks its cache of the decoded body.
    raw: Any = message
    _, _, embed = json.loads(raw.body)
    headers.update(
        id=head.task_id,
        root_id=head.task_id,
        task=head.name,
        argsrepr="()",
        kwargsrepr=saferepr(head.params),
    )
    message.properties["correlation_id"] = head.task_id
    raw.body = json.dumps([[], head.params, embed]).encode()
    raw._decoded_cache = None  # should anything have decoded the old body already
    log.debug("turn sent for %s runs %s", sent_for, head.task_id)
    return True


_CeleryBlueprint: Any = Consumer.Blueprint  # the stub names it a variable, not a class


class _Blueprint(_CeleryBlueprint):  # type: ignore[misc]  # Any as a base
    """Celery's steps but its native delayed delivery, which it sets up for a quorum queue
    (28 exchanges and queues per broker): Taskline never sends a message with a countdown."""

    default_steps = [s for s in _CeleryBlueprint.default_steps if "delayed_delivery" not in s]


class TurnConsumer(Consumer):
    """Celery's consumer, each task message bound to the head of its line on delivery."""

    Blueprint = _Blueprint

    _client: redis.Redis | None = None
    _transitions: dict[str, Transitions] | None = None

    def line_of(self, message: Message) -> Line:
        """The line of the queue a message came from (its routing key names the queue); the
        worker's own line if no line has that queue."""
        app = self.app
        assert isinstance(app, TasklineCelery)
        queue = message.delivery_info.get("routing_key") or ""
        return lines_of(app.settings).by_queue(queue) or app.line

    def head(self, line: Line) -> Head | None:
        """The task the next turn of the line runs (None on a Redis failure: the message is
        left as is)."""
        app = self.app
        assert isinstance(app, TasklineCelery)
        settings = app.settings
        if self._client is None or self._transitions is None:
            self._client = redis_clients.client(
                settings,
                decode_responses=True,
                socket_connect_timeout=settings.connect_timeout,
                socket_timeout=settings.connect_timeout,
            )
            self._transitions = {}
        transitions = self._transitions.get(line.name)
        if transitions is None:
            keys = Keys(settings.key_prefix, line)
            transitions = self._transitions[line.name] = Transitions(self._client, keys)
        try:
            return transitions.head()
        except redis.RedisError as exc:
            log.warning("the line could not be read, the turn runs its own task: %s", exc)
            return None

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Callable[[Message], Any]:
        handle: Callable[[Message], Any] = super().create_task_handler(*args, **kwargs)

        def on_task_received(message: Message) -> Any:
            if isinstance(message.headers, dict) and TURN_HEADER in message.headers:
                bind(message, self.head(self.line_of(message)))
            return handle(message)

        return on_task_received
