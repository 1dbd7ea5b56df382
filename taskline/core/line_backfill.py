"""Records made before lines join the main line's index families, once, as a process starts.

A record made before lines has no `line` field (or an empty one) and is indexed only in the
families of before (all tasks, by name, by owner, by both): it is on the main line (its sets
kept their names), but the main line's own families (by line, by line and owner) lack it, so
a listing of the main line would miss it and a quorum turn would not see it running. Every
process checks at start, as it checks the keys' layout (core.layout): each such record gets
the main line's name and the index entries of the main line's families, in its state, by its
creation sequence. A record is changed in a transaction watching it, so a transition running at the
same time is never overwritten (the record is read again and retried); a record that has a
line is left alone, so the check is idempotent and a second start finds nothing to do.

Walking the records costs a round trip per 500 (half a second to a second for 100,000), so
a start first counts them: when every task in the index of all tasks is in the index of one of
the lines set up, none was made before lines and none is read. (Records left on a line no
longer set up make the counts differ: such a start walks them, finding nothing to adopt.)

A Redis that cannot be reached at start is not checked (the process starts, and says so).
"""

import json
import sys
from typing import cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from taskline.core import redis_clients
from taskline.core.lines import Lines
from taskline.core.records import Keys
from taskline.core.replies import text_or_none, texts
from taskline.core.settings import Settings, lines_of

# Records looked at per round trip.
BATCH = 500


def all_lined(client: redis.Redis, keys: Keys, lines: Lines) -> bool:
    """Whether the index of all tasks holds as many as the `lines`' own indexes together
    (counted at one moment: a task created between two counts would be counted in one)."""
    with client.pipeline(transaction=True) as pipe:
        pipe.zcard(keys.index())
        for line in lines:
            pipe.zcard(keys.index(line=line.name))
        every, *lined = pipe.execute()
    return bool(every == sum(lined))


def adopt_records_made_before_lines(client: redis.Redis, prefix: str, lines: Lines) -> int:
    """Give each record made before lines the main line and its index entries; how many
    (`client` decodes its replies)."""
    keys = Keys(prefix, lines.main)
    if all_lined(client, keys, lines):
        return 0
    adopted, after = 0, "-inf"
    while True:
        # Paged by score (each record's unique seq), not by rank: a record deleted or
        # forgotten meanwhile shifts the ranks, and the next page by rank would skip one.
        page = cast(
            list[tuple[str, float]],
            client.zrangebyscore(keys.index(), after, "+inf", start=0, num=BATCH, withscores=True),
        )
        if not page:
            return adopted
        ids = texts([member for member, _ in page])
        after = f"({int(page[-1][1])}"
        with client.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hget(keys.task(task_id), "line")
            lined = pipe.execute()
        adopted += sum(
            _adopt(client, keys, t) for t, line in zip(ids, lined, strict=True) if not line
        )


def _adopt(client: redis.Redis, keys: Keys, task_id: str) -> bool:
    """One record: True when it was made before lines and now is the main line's."""
    record = keys.task(task_id)
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(record)  # type: ignore[no-untyped-call]  # redis-py's stub
                found = pipe.hmget(record, "line", "owner", "families", "seq", "state")
                line, owner, families, seq, state = map(text_or_none, found)
                if line or families is None or seq is None:
                    return False  # it has a line, or it is gone
                own = [keys.index_family(line=keys.line_name)]
                own.append(keys.index_family(owner=owner or "", line=keys.line_name))
                pipe.multi()
                fams = json.loads(families)
                pipe.hset(
                    record,
                    mapping={"line": keys.line_name, "families": json.dumps([*fams, *own])},
                )
                for family in own:
                    pipe.zadd(f"{family}all", {task_id: int(seq)})
                    if state:
                        pipe.zadd(f"{family}state:{state}", {task_id: int(seq)})
                pipe.execute()
                return True
            except redis.WatchError:
                continue


def adopt_at_start(settings: Settings, process: str) -> None:
    """adopt_records_made_before_lines on this deployment's Redis, saying how many it
    adopted; an unreachable Redis is said and not fatal."""
    client = redis_clients.client(
        settings,
        decode_responses=True,
        socket_connect_timeout=settings.connect_timeout,
        socket_timeout=settings.connect_timeout,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        adopted = adopt_records_made_before_lines(client, settings.key_prefix, lines_of(settings))
    except redis.RedisError as exc:
        print(
            f"Taskline {process}: Redis cannot be reached ({exc}); records made before lines "
            "were not checked for the main line's index",
            file=sys.stderr,
        )
        return
    finally:
        client.close()
    if adopted:
        print(
            f"Taskline {process}: {adopted} records made before lines joined the main line",
            file=sys.stderr,
        )
