"""A bare Celery app: the baselines for publishing and for the worker's per-task cost.

Same broker, Redis backend and worker settings as Taskline (durable priority queue, publisher
confirms, persistent messages, acks late, prefetch 1, prefork with one child), none of its
record keeping: `bare.reverse` returns the reversed text and Celery stores it in Redis. With
BENCH_BARE_MONITORED=1 the worker also sends task events and stores the STARTED state, as
Taskline's does.

`python -m bench.bare_celery produce --seconds S` publishes from one thread, each publish
waiting for RabbitMQ's confirm, and prints {"published", "seconds", "rate", "last"} as JSON
(`last`: the id of the last task sent, the last to run).
"""

import argparse
import json
import os
import time

from celery import Celery
from kombu import Exchange, Queue

from taskline.core.settings import get_settings

settings = get_settings()
_exchange = Exchange(settings.queue, type="direct", durable=True)

app = Celery("bare", broker=settings.broker_url, backend=settings.redis_url)
app.conf.update(
    result_backend_transport_options={"global_keyprefix": settings.key_prefix},
    broker_transport_options={"confirm_publish": True},
    task_queues=(
        Queue(
            settings.queue,
            _exchange,
            routing_key=settings.queue,
            durable=True,
            queue_arguments={"x-max-priority": 9},
        ),
    ),
    task_default_queue=settings.queue,
    task_default_exchange=settings.queue,
    task_default_routing_key=settings.queue,
    task_default_delivery_mode="persistent",
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    worker_concurrency=1,
    worker_pool="prefork",
    worker_hijack_root_logger=False,
    result_expires=3600,
)
if os.environ.get("BENCH_BARE_MONITORED"):
    # What Celery's own monitoring costs: the task events Flower needs, the STARTED state.
    app.conf.update(worker_send_task_events=True, task_track_started=True)


@app.task(name="bare.reverse")
def reverse(text: str) -> str:
    """The trivial task: what Taskline's `reverse` computes, without its bookkeeping."""
    return text[::-1]


def produce(seconds: float, count: int) -> dict[str, float | str]:
    """Publish confirmed messages from this thread until `seconds` pass or `count` are sent."""
    last = reverse.delay("warm up the connection").id
    sent = 0
    start = time.perf_counter()
    deadline = start + seconds
    while sent < count and time.perf_counter() < deadline:
        last = app.send_task("bare.reverse", args=["hello"]).id
        sent += 1
    elapsed = time.perf_counter() - start
    timed = {"published": sent + 1, "timed": sent, "seconds": elapsed, "rate": sent / elapsed}
    return {**timed, "last": last}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["produce"])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--count", type=int, default=10**9)
    args = parser.parse_args()
    print(json.dumps(produce(args.seconds, args.count)), flush=True)


if __name__ == "__main__":
    main()
