"""Redis keys of a layout this version no longer reads: the API and the worker refuse them.

Before the serial ledger became a declared exclusive range, a model's reserved serials were a
sorted set at `{prefix}serials:{model}`; they are now at `{prefix}ledger:serials:{model}`,
beside every other declared ledger, and a record's `ledger` field names that key. No release
used the old layout (it came and went before the first), so no migration ships for it. A
process that went on beside such keys would not see the ranges they reserve and could issue
their serials again: the API and the worker stop at start instead, naming the keys and the
move that keeps them.

A Redis that cannot be reached at start is not checked (the process starts, as it does when
Redis is away, and says so): the check is for a development Redis kept from before the change.

The check walks the whole keyspace (a quarter to half a second for 100,000 tasks), so a Redis
found without old ledgers is marked (`{prefix}layout`, this layout's number) and a process
starting on a marked Redis reads that key alone. Only a version from before the change writes
old ledgers, and no release was one: none runs beside a marked Redis.
"""

import sys

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from taskline.core import redis_clients
from taskline.core.records import Keys
from taskline.core.settings import Settings

# The old layout's ledgers: `{prefix}serials:{model}`, sorted sets. (The serial checks'
# throttles, `{prefix}serial-checks:…`, do not match.)
OLD_LEDGERS = "serials:"
# Keys one SCAN call looks at: the keyspace is walked until a start finds no old ledger.
SCAN_COUNT = 5000
# Old keys a refusal names (it counts them all).
NAMED = 3
# The key layout of this version, as `{prefix}layout` holds it once a start found no old key.
CURRENT = "2"


def _glob(text: str) -> str:
    """`text` matched literally in a SCAN pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def old_ledgers(client: redis.Redis, keys: Keys) -> list[str]:
    """The serial ledgers of the old layout under this prefix, sorted."""
    pattern = f"{_glob(keys.prefix + OLD_LEDGERS)}*"
    found = client.scan_iter(match=pattern, count=SCAN_COUNT, _type="zset")
    return sorted(k.decode() if isinstance(k, bytes) else str(k) for k in found)


def unmarked_old_ledgers(client: redis.Redis, keys: Keys) -> list[str]:
    """old_ledgers, but none on a Redis marked as found without them; one found without them
    is marked."""
    if client.get(keys.layout) in (CURRENT, CURRENT.encode()):
        return []
    found = old_ledgers(client, keys)
    if not found:
        client.set(keys.layout, CURRENT)
    return found


def refusal(found: list[str], keys: Keys) -> str:
    """Why a process that found old ledgers stops, and the move that keeps them."""
    named = ", ".join(found[:NAMED])
    if len(found) > NAMED:
        named += f" and {len(found) - NAMED} more"
    old, new = keys.prefix + OLD_LEDGERS, keys.ledger("serials:")
    return (
        f"Redis holds serial ledgers in a layout this version no longer reads ({named}): "
        f"it keeps them at {new}MODEL, so the serials reserved there could be issued "
        "again. No release used that layout, so no migration ships for it: with every "
        f"Taskline process stopped, rename each {old}MODEL to {new}MODEL and set the `ledger` "
        f"field of each task record ({keys.task('ID')}) that names the old key to the new "
        "one; or start on another TASKLINE_KEY_PREFIX"
    )


def exit_if_old_layout(settings: Settings, process: str) -> None:
    """Stop the process (status 1, the refusal on stderr) if Redis holds old ledgers."""
    keys = Keys(settings.key_prefix)
    client = redis_clients.client(
        settings,
        socket_connect_timeout=settings.connect_timeout,
        socket_timeout=settings.connect_timeout,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        found = unmarked_old_ledgers(client, keys)
    except redis.RedisError as exc:
        print(
            f"Taskline {process}: Redis cannot be reached ({exc}); its keys were not checked "
            "for the serial ledgers' old layout",
            file=sys.stderr,
        )
        return
    finally:
        client.close()
    if found:
        raise SystemExit(f"Taskline {process} refuses to start: {refusal(found, keys)}")
