"""The old-layout check walks the keyspace once per Redis, not at every process start."""

import pytest

from taskline.core.layout import CURRENT, unmarked_old_ledgers
from taskline.core.records import Keys
from tests.support import counting_client, round_trips

pytestmark = pytest.mark.integration


def test_a_redis_found_without_old_ledgers_is_marked_and_not_walked_again(keys: Keys) -> None:
    with counting_client() as client:
        old = f"{keys.prefix}serials:AB"
        client.zadd(old, {"1:10:t1": 1})
        assert unmarked_old_ledgers(client, keys) == [old]
        assert client.get(keys.layout) is None  # refused: not marked

        client.delete(old)  # moved, as the refusal says
        assert unmarked_old_ledgers(client, keys) == []
        assert client.get(keys.layout) == CURRENT

        before = round_trips(client)
        assert unmarked_old_ledgers(client, keys) == []
        assert round_trips(client) - before == 1  # the mark read, no SCAN
