"""The Redis sentinel settings and the one factory of Redis clients (no Redis needed: clients
connect on their first command)."""

import pytest
from pydantic import ValidationError

from taskline.core import redis_clients
from taskline.core.settings import Settings

SENTINELS = "10.0.0.1:26379, 10.0.0.2:26380,[::1]:26381"


def settings(**changes: object) -> Settings:
    return Settings(_env_file=None, **changes)


@pytest.mark.parametrize(
    ("sentinels", "named"),
    [("10.0.0.1", "'10.0.0.1'"), ("a:1,b", "'b'"), ("a:0", "'a:0'"), ("a:65536", "'a:65536'")],
)
def test_a_sentinel_that_is_not_host_and_port_is_refused_by_name(
    sentinels: str, named: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        settings(redis_sentinels=sentinels)
    assert f"TASKLINE_REDIS_SENTINELS: {named} is not host:port" in str(refused.value)


def test_a_master_name_with_spaces_and_a_socket_url_with_sentinels_are_refused() -> None:
    with pytest.raises(ValidationError, match="TASKLINE_REDIS_MASTER: 'my master'"):
        settings(redis_master="my master")
    with pytest.raises(ValidationError, match="with sentinels give a redis://"):
        settings(redis_sentinels=SENTINELS, redis_url="unix:///run/redis.sock")


def test_without_sentinels_the_clients_go_to_the_url() -> None:
    plain = settings(redis_url="redis://:pw@10.1.2.3:6390/4")
    assert not redis_clients.uses_sentinels(plain)
    blocking = redis_clients.client(plain).connection_pool.connection_kwargs
    assert (blocking["host"], blocking["port"], blocking["db"]) == ("10.1.2.3", 6390, 4)
    pool = redis_clients.async_client(plain, max_connections=7, timeout=1.5).connection_pool
    assert (pool.max_connections, pool.connection_kwargs["password"]) == (7, "pw")


def test_with_sentinels_the_clients_ask_them_for_the_master_with_the_urls_credentials() -> None:
    chosen = settings(
        redis_url="redis://user:pw@ignored:1/3",
        redis_sentinels=SENTINELS,
        redis_master="orders",
        connect_timeout=1.5,
    )
    assert redis_clients.uses_sentinels(chosen)
    for client in (
        redis_clients.client(chosen, socket_timeout=5.0),
        redis_clients.async_client(chosen, max_connections=7, timeout=1.5, socket_timeout=5.0),
    ):
        pool = client.connection_pool
        assert (pool.service_name, pool.is_master) == ("orders", True)
        kwargs = pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("user", "pw", 3)
        assert kwargs["socket_timeout"] == 5.0 and "host" not in kwargs
        sentinels = pool.sentinel_manager.sentinels
        asked = [s.connection_pool.connection_kwargs for s in sentinels]
        assert [(a["host"], a["port"]) for a in asked] == [
            ("10.0.0.1", 26379),
            ("10.0.0.2", 26380),
            ("::1", 26381),
        ]
        assert {a["socket_timeout"] for a in asked} == {1.5}
    assert pool.max_connections == 7 and pool.timeout == 1.5  # the asyncio one waits
