"""What many `?wait=` long polls on one running task cost Redis and the API.

Starts a private Redis (so that `INFO commandstats` counts this run alone) and a Taskline
stack on it, postpones a `leibniz_pi` that reports progress, opens N long polls on it with one
bearer token, brings the task back and counts the Redis commands from then until every poll
has answered. The same run with no poll gives what the task costs by itself; the difference
is the polls' cost. Prints one JSON line per N. With `--sse`, N streams of the task's events
(`GET /tasks/{id}/events`) instead, each read to its end.

    .venv/bin/python -m bench.long_polls --polls 0 200 [--sse]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import redis

from taskline.core.records import Keys
from tests.client import submit, token
from tests.processes import Stack
from tests.support import free_port
from tests.waiting import wait_until

FAR_AWAY = "2100-01-01T00:00:00Z"
ARRIVAL = 20.0


def commandstats(client: redis.Redis) -> dict[str, int]:
    return {name: stats["calls"] for name, stats in client.info("commandstats").items()}


async def long_polls(url: str, path: str, bearer: str, n: int, sse: bool) -> list[int]:
    limits = httpx.Limits(max_connections=n + 1, max_keepalive_connections=n + 1)
    headers = {"Authorization": f"Bearer {bearer}"}
    async with httpx.AsyncClient(base_url=url, timeout=90, limits=limits) as client:

        async def one() -> int:
            if not sse:
                return (await client.get(path, params={"wait": 60}, headers=headers)).status_code
            async with client.stream("GET", f"{path}/events", headers=headers) as stream:
                await stream.aread()
                return stream.status_code

        return await asyncio.gather(*(one() for _ in range(n)))


def measure(
    stack: Stack, private: redis.Redis, n: int, digits: int, delay: float, sse: bool
) -> dict:
    api = psutil.Process(stack.procs["api"].pid)  # type: ignore[union-attr]
    with stack.client() as admin:
        bearer = token(admin, "admin")
        task = submit(
            admin, "leibniz_pi", {"digits": digits}, delay_seconds=delay, not_before=FAR_AWAY
        )
        path = f"/tasks/{task['id']}"
        slots = Keys(stack.settings.key_prefix).streams("admin")
        loop = asyncio.new_event_loop()
        polls = loop.create_task(long_polls(stack.url, path, bearer, n, sse))
        # Let every poll arrive: each holds a stream slot where long polls are counted (else
        # give them the whole ARRIVAL time).
        arrived = time.monotonic() + ARRIVAL
        while time.monotonic() < arrived and private.zcard(slots) < n:
            loop.run_until_complete(asyncio.sleep(0.2))
        waiting = private.zcard(slots)
        before, cpu_before, began = commandstats(private), api.cpu_times(), time.monotonic()
        released = admin.patch(path, json={"not_before": None})
        assert released.status_code == 200, released.text
        statuses = loop.run_until_complete(polls) if n else []
        if not n:  # a few HGETs of our own, not a poll every 20 ms
            record = Keys(stack.settings.key_prefix).task(task["id"])
            wait_until(lambda: private.hget(record, "state") == "SUCCESS", 60, interval=0.5)
        after, cpu_after, took = commandstats(private), api.cpu_times(), time.monotonic() - began
        loop.close()
        events = private.xlen(Keys(stack.settings.key_prefix).events(task["id"]))
    calls = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return {
        "polls": n,
        "kind": "sse" if sse else "wait",
        "holding_slots_at_release": waiting,
        "answers": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "task_events": events,
        "seconds": round(took, 2),
        "api_cpu_seconds": round(
            cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system, 2
        ),
        "redis_commands": sum(v for k, v in calls.items() if k != "cmdstat_info"),
        "by_command": {k.removeprefix("cmdstat_"): v for k, v in sorted(calls.items()) if v},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, nargs="+", default=[0, 200])
    parser.add_argument("--digits", type=int, default=7)
    parser.add_argument("--delay", type=float, default=3.0)
    parser.add_argument("--sse", action="store_true", help="task event streams, not long polls")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    private = redis.Redis.from_url(url, decode_responses=True)
    stack = None
    try:
        wait_until(lambda: _answers(private), 10)
        logs = Path(tempfile.mkdtemp(prefix="long-polls-"))
        stack = Stack(
            logs,
            TASKLINE_REDIS_URL=url,
            TASKLINE_MAX_STREAMS_PER_USER=str(max(args.polls) + 10),
        )
        stack.start()
        for n in args.polls:
            print(
                json.dumps(measure(stack, private, n, args.digits, args.delay, args.sse)),
                flush=True,
            )
    finally:
        if stack is not None:
            stack.close()
        server.terminate()
        server.wait(10)
    sys.exit(0)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


if __name__ == "__main__":
    main()
