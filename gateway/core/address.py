"""Who the client is: the peer address, or behind trusted reverse proxies the address they saw.

A proxy in front of the gateway makes every connection come from the proxy's address, so limits
per address would lump all clients together and the audit log would name the proxy. Proxies
report the client in ``X-Forwarded-For`` (each appends the address it received the request
from), but any client can send that header too. So it is believed only as far as
``server.trusted_proxies`` reaches: read from the right (the hop nearest the gateway), every
address that is a trusted proxy is skipped, and the first one that is not is the client. With
no trusted proxies (the default) the header is ignored and the peer address is the client.

Pure: strings in, a string out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["Networks", "client_address", "networks", "parse_address"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Networks = tuple[Network, ...]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def networks(cidrs: Iterable[str]) -> Networks:
    """The networks of ``server.trusted_proxies`` (already checked by the configuration)."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def parse_address(text: str) -> Address | None:
    """An address as proxies write it: ``192.0.2.1``, ``192.0.2.1:5678``, ``2001:db8::1`` or
    ``[2001:db8::1]:443``; an IPv4-mapped IPv6 address as its IPv4. None when it is none."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, trusted: Networks) -> bool:
    return any(address in network for network in trusted if network.version == address.version)


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Networks) -> str:
    """The client's address for a connection from ``peer`` carrying these ``X-Forwarded-For``
    headers (each a comma-separated list, in the order received).

    The peer when it is not a trusted proxy (or none is configured). Otherwise the rightmost
    forwarded address that is not a trusted proxy; if every one is, the leftmost; if one does not
    parse, the trusted hop to its right (the header is not believed past it).
    """
    address = parse_address(peer)
    if address is None or not trusted or not _trusted(address, trusted):
        return str(address) if address is not None else peer
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    client = address
    for hop in reversed(hops):
        parsed = parse_address(hop)
        if parsed is None:
            break
        client = parsed
        if not _trusted(parsed, trusted):
            break
    return str(client)
