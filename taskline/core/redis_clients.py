"""How a process gets a client of the main Redis: at TASKLINE_REDIS_URL, or wherever the
sentinels say the primary is.

Every client of the main Redis is made here (a test checks that no other module builds one
from the URL), so that every process follows a failover alike. With TASKLINE_REDIS_SENTINELS
set, the URL gives the password, user, database and TLS, and the host is the primary that the
sentinels name for TASKLINE_REDIS_MASTER. Such a client asks the sentinels again for each new
connection: after a failover the connections to the old primary fail (or are told READONLY
once it is a replica), the client's retry policy reconnects, and the new connection goes to
the new primary. Until the sentinels have promoted one, they name none that is up, which is a
ConnectionError like any unreachable Redis (a 503 in the API, a retried write in the worker).
"""

from typing import Any, cast

import redis
import redis.asyncio
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.connection import parse_url
from redis.sentinel import Sentinel

from taskline.core.settings import Settings, sentinel_addresses

# redis-py leaves parse_url and its sentinels' constructors and master_for unannotated: each
# such call below says so (`type: ignore[no-untyped-call]`).


class _BlockingSentinelConnectionPool(
    AsyncSentinelConnectionPool, redis.asyncio.BlockingConnectionPool
):
    """A sentinel's pool whose callers wait for a free connection (up to its `timeout`)
    instead of failing at once, as the API's pool without sentinels does."""


def _primary_options(settings: Settings) -> dict[str, Any]:
    """The URL's connection options without its host: those of the primary."""
    options: dict[str, Any] = parse_url(settings.redis_url)  # type: ignore[no-untyped-call]
    options.pop("host", None)
    options.pop("port", None)
    if options.pop("connection_class", None) is not None:  # rediss://
        options["ssl"] = True
    return options


def _sentinel_options(settings: Settings) -> dict[str, Any]:
    """How the sentinels themselves are asked: as briefly as Redis counts as unavailable."""
    return {
        "socket_connect_timeout": settings.connect_timeout,
        "socket_timeout": settings.connect_timeout,
    }


def uses_sentinels(settings: Settings) -> bool:
    """Whether the main Redis is found through sentinels (and may fail over)."""
    return bool(settings.redis_sentinels)


def client(settings: Settings, **options: Any) -> redis.Redis:
    """A blocking client of the main Redis; `options` are redis-py's connection options."""
    if not uses_sentinels(settings):
        return redis.Redis.from_url(settings.redis_url, **options)
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        sentinel_addresses(settings.redis_sentinels),
        sentinel_kwargs=_sentinel_options(settings),
    )
    made = sentinels.master_for(  # type: ignore[no-untyped-call]
        settings.redis_master, **_primary_options(settings), **options
    )
    return cast(redis.Redis, made)


def async_client(
    settings: Settings, *, max_connections: int, timeout: float, **options: Any
) -> redis.asyncio.Redis:
    """An asyncio client of the main Redis over a blocking pool: a caller finding all
    `max_connections` busy waits up to `timeout` seconds for one."""
    if not uses_sentinels(settings):
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=max_connections, timeout=timeout, **options
        )
        return redis.asyncio.Redis.from_pool(pool)
    sentinels = AsyncSentinel(  # type: ignore[no-untyped-call]
        sentinel_addresses(settings.redis_sentinels),
        sentinel_kwargs=_sentinel_options(settings),
    )
    made = sentinels.master_for(
        settings.redis_master,
        connection_pool_class=_BlockingSentinelConnectionPool,
        max_connections=max_connections,
        timeout=timeout,
        **_primary_options(settings),
        **options,
    )
    return cast(redis.asyncio.Redis, made)
