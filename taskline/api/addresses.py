"""Where a request comes from, as sign-in and serial-check throttling count it.

`X-Forwarded-For` is anyone's to write: it is read only when the peer is one of the configured
trusted proxies (none by default), and then the client is the last address in it that is not
itself a trusted proxy (what the nearest proxy saw; whatever the client wrote stands left of
it). uvicorn must not read the header itself (`--no-proxy-headers`): it would trust every
loopback peer, and then any local process could pose as any address.

An IPv6 client is counted by its /64: one subscriber usually holds a whole /64, so counting
exact addresses would give a guesser 2^64 budgets.
"""

import ipaddress
from collections.abc import Iterable

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddresses:
    """The throttled address of a request, from its peer and the trusted proxies."""

    def __init__(self, trusted_proxies: str) -> None:
        """`trusted_proxies`: addresses or networks, comma-separated (ValueError if not)."""
        self.trusted: list[Network] = []
        for entry in filter(None, (part.strip() for part in trusted_proxies.split(","))):
            try:
                self.trusted.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ValueError(f"trusted proxy {entry!r} is not an address or network") from exc

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def of(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client of a request from `peer` carrying these X-Forwarded-For values."""
        client = peer
        if self.trusted and self._is_trusted(peer):
            hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
            for hop in reversed([hop for hop in hops if hop]):
                client = hop
                if not self._is_trusted(hop):
                    break
        return bucket(client)

    def of_connection(self, conn: HTTPConnection) -> str:
        peer = conn.client.host if conn.client else ""
        return self.of(peer, conn.headers.getlist("x-forwarded-for"))


def bucket(address: str) -> str:
    """An IPv4 address as it is; an IPv6 one as its /64 (an IPv4-mapped one as IPv4)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
