"""The client address sign-in and serial checks count: a trusted proxy's word, IPv6 by /64."""

import pytest

from taskline.api.addresses import ClientAddresses
from tests.processes import api_command
from tests.support import ROOT


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    addresses = ClientAddresses("")
    assert addresses.of("127.0.0.1", ["203.0.113.5"]) == "127.0.0.1"
    assert addresses.of("192.0.2.9", []) == "192.0.2.9"


def test_a_trusted_proxy_names_the_last_address_it_did_not_trust() -> None:
    addresses = ClientAddresses("127.0.0.1, 10.0.0.0/8")
    assert addresses.of("127.0.0.1", ["203.0.113.5"]) == "203.0.113.5"
    assert addresses.of("127.0.0.1", ["198.51.100.1, 203.0.113.5", "10.1.2.3"]) == "203.0.113.5"
    assert addresses.of("127.0.0.1", ["10.0.0.1, 10.0.0.2"]) == "10.0.0.1"  # all trusted
    assert addresses.of("127.0.0.1", []) == "127.0.0.1"
    assert addresses.of("127.0.0.1", ["  "]) == "127.0.0.1"
    assert addresses.of("192.0.2.9", ["203.0.113.5"]) == "192.0.2.9"  # not a proxy


def test_ipv6_clients_are_counted_by_their_64() -> None:
    addresses = ClientAddresses("::1")
    assert addresses.of("2001:db8:0:7::1", []) == "2001:db8:0:7::/64"
    assert addresses.of("2001:db8:0:7:ffff::2", []) == "2001:db8:0:7::/64"
    assert addresses.of("::1", ["2001:db8:0:8::1"]) == "2001:db8:0:8::/64"
    assert addresses.of("::ffff:192.0.2.1", []) == "192.0.2.1"
    assert addresses.of("testclient", []) == "testclient"  # not an address: as it is


def test_a_malformed_trusted_proxy_is_refused() -> None:
    with pytest.raises(ValueError, match="not-an-address"):
        ClientAddresses("127.0.0.1,not-an-address")


def test_every_uvicorn_command_leaves_x_forwarded_for_to_the_app() -> None:
    """uvicorn's own reading trusts every loopback peer: each way of starting the API that
    this repository has turns it off."""
    starts = {
        "supervisord.conf": (ROOT / "supervisord.conf").read_text(),
        "tests": " ".join(api_command(8000)),
        "bench": (ROOT / "bench" / "stack.py").read_text(),
    }
    for where, text in starts.items():
        assert "taskline.api.main:create_app" in text, where
        assert "--no-proxy-headers" in text, where
