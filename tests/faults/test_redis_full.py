"""Redis full (`maxmemory` with `noeviction`): submissions are refused with a clear 503, and
nothing is half-written; deleting tasks makes room again."""

import httpx
import pytest
from kombu import Connection

from tests.faults.conftest import RedisServer
from tests.processes import Stack

pytestmark = pytest.mark.e2e

FULL = ("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
BODY = {"name": "reverse", "params": {"text": "x" * 100_000}}
ROOM = 1_500_000


def waiting_messages(stack: Stack) -> int:
    with Connection(stack.settings.broker_url) as conn:
        return conn.default_channel.queue_declare(stack.settings.queue, passive=True).message_count


def test_a_full_redis_refuses_submissions_with_a_503_and_keeps_what_it_holds(
    redis_stack: object,
) -> None:
    server, stack = redis_stack(options=FULL)  # type: ignore[operator]
    assert isinstance(server, RedisServer)
    stack.start("api")  # no worker: accepted tasks stay in line, their messages in the queue
    with stack.client() as api:
        assert api.get("/tasks").status_code == 200  # the API's connections are open
        # Room for about 15 such tasks above what Redis holds before any (its own buffers and
        # the API's connections, which vary from run to run).
        limit = int(stack.redis.info("memory")["used_memory"]) + ROOM
        stack.redis.config_set("maxmemory", limit)
        accepted: list[str] = []
        refused: httpx.Response | None = None
        for _ in range(40):
            response = api.post("/tasks", json=BODY)
            if response.status_code != 202:
                refused = response
                break
            accepted.append(response.json()["id"])
        assert refused is not None, "1.5 MB of room took 4 MB of tasks"
        assert len(accepted) >= 5, len(accepted)
        assert refused.status_code == 503, refused.text
        assert "memory" in refused.json()["detail"], refused.json()
        assert accepted

        # Every task answered 202 is whole; the refused one left nothing.
        keys, redis = stack.settings.key_prefix, stack.redis
        assert redis.zcard(f"{keys}index:all") == len(accepted)
        assert redis.zcard(f"{keys}line") == len(accepted)
        assert len(list(redis.scan_iter(f"{keys}task:*"))) == len(accepted)
        held = sum(int(redis.hget(f"{keys}task:{i}", "bytes")) for i in accepted)
        assert int(redis.get(f"{keys}bytes:admin")) == held
        assert waiting_messages(stack) == len(accepted)
        assert api.get(f"/tasks/{accepted[0]}").status_code == 200

        # Deleting tasks frees room, even while Redis is surely over its limit (every write
        # that may grow its memory refused): a submission is accepted again.
        redis.config_set("maxmemory", int(redis.info("memory")["used_memory"]) - 200_000)
        tiny = api.post("/tasks", json={"name": "reverse", "params": {"text": "tiny"}})
        assert tiny.status_code == 503, tiny.text
        # Half of them: room for one more whatever else Redis holds meanwhile (its own
        # buffers, the line's events).
        for task_id in accepted[: max(3, len(accepted) // 2)]:
            assert api.delete(f"/tasks/{task_id}").status_code == 204
        redis.config_set("maxmemory", limit)
        again = api.post("/tasks", json=BODY)
        assert again.status_code == 202, again.text
