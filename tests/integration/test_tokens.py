"""Bearer tokens in Redis: a bounded number per user, revoked together in bounded batches."""

import pytest
import redis

from taskline.core.records import Keys
from taskline.core.transitions import RevokedBatch, Transitions

pytestmark = pytest.mark.integration

TTL_MS = 3_600_000


def issue(
    transitions: Transitions, keys: Keys, n: int, most: int = 10_000, tag: str = "t"
) -> list[str]:
    issued = [keys.token(f"{tag}{i}") for i in range(n)]
    for key in issued:
        transitions.issue_token("alice", key, TTL_MS, most)
    return issued


def test_issuing_beyond_the_bound_revokes_the_oldest(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    issued = issue(transitions, keys, 5, most=3)
    assert [bool(client.exists(key)) for key in issued] == [False, False, True, True, True]
    assert client.zcard(keys.tokens("alice")) == 3
    assert client.get(issued[-1]) == "alice"
    assert 0 < client.ttl(issued[-1]) <= TTL_MS / 1000


def test_revoke_all_goes_in_batches_and_spares_tokens_issued_meanwhile(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    issued = issue(transitions, keys, 1201)
    first = transitions.revoke_tokens("alice", None, 500)
    assert first.revoked == 500 and first.more
    assert client.zcard(keys.tokens("alice")) == 701
    newer = issue(transitions, keys, 2, tag="newer")  # issued meanwhile: they may stay
    batches = [first]
    while batches[-1].more:
        batches.append(transitions.revoke_tokens("alice", batches[-1].bound, 500))
    assert [b.revoked for b in batches] == [500, 500, 201]
    assert not any(client.exists(key) for key in issued)
    assert all(client.exists(key) for key in newer)
    assert client.zcard(keys.tokens("alice")) == 2
    last = transitions.revoke_tokens("alice", None, 500)
    assert isinstance(last, RevokedBatch) and (last.revoked, last.more) == (2, False)
    assert not client.exists(keys.tokens("alice"))
