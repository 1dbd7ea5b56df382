"""User names are kept apart in Redis: configured names are restricted to a safe set, and
whatever a client sends as a name or comes from as an address becomes a key part that cannot
name another key."""

import json

import pytest

from taskline.api.auth import Role, load_users
from taskline.core.records import Keys
from taskline.core.settings import Settings

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


def settings_with(*names: str) -> Settings:
    return Settings(users=json.dumps({name: {"password_hash": HASH} for name in names}))


def test_safe_names_load_and_the_rest_are_refused_by_name() -> None:
    assert load_users(settings_with("alice", "B.o-b_2", "x" * 64)).keys() == {
        "alice",
        "B.o-b_2",
        "x" * 64,
    }
    assert load_users(settings_with("alice"))["alice"][1] is Role.USER
    for bad in ("al:ice", "a b", "x" * 65, "", "ünï", "a/b", "a*"):
        with pytest.raises(ValueError, match="are not allowed") as refused:
            load_users(settings_with("alice", bad))
        assert repr(bad) in str(refused.value) and "'alice'" not in str(refused.value)


def test_client_given_names_and_addresses_cannot_reach_other_keys() -> None:
    keys = Keys("p:")
    plain = keys.signin("alice", "127.0.0.1")
    assert plain[0] == "p:signin:failures:name:alice"
    assert plain[4] == "p:signin:failures:address:127.0.0.1"
    assert plain[8] == "p:signin:known:alice/127.0.0.1"
    hostile = ["alice:lock", "alice/x", "a" * 5000, "::1", "alice\n", "#abc"]
    made = {key for text in hostile for key in keys.signin(text, text)}
    assert len(made) == 9 * len(hostile)  # no two inputs share a key
    for key in made:
        assert key.count(":") == 4 - key.startswith("p:signin:known:"), key
        assert len(key) < 120, key
    assert not made & set(plain)
