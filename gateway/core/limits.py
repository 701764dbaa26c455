"""What one client may cost, as plain arithmetic: token buckets and counts. No I/O, no clock of
its own: every call takes ``now`` (monotonic seconds).

- ``refill``: a token bucket as two numbers (tokens, last time), so a viewer holds its message
  budget in two slots rather than an object each (there may be 15,000 viewers).
- ``KeyedBuckets``: one bucket per client address (new websockets per second), bounded: a
  client that invents addresses (IPv6 gives it plenty) cannot grow it past ``capacity``.
- ``Counts``: open connections per key (address, token subject), with a ceiling.
- ``address_key``: what counts as one client address (an IPv6 client by its /64).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Final

__all__ = ["BUCKETS", "Counts", "KeyedBuckets", "address_key", "refill"]

BUCKETS: Final = 16384
"""Client addresses whose handshake bucket is remembered at most (about 2 MB)."""


def refill(tokens: float, stamp: float, now: float, rate: float, burst: float) -> float:
    """The tokens of a bucket last left with ``tokens`` at ``stamp``, at ``now``: refilled at
    ``rate`` per second up to ``burst``. A clock that went backwards refills nothing."""
    return min(burst, tokens + max(0.0, now - stamp) * rate)


@dataclass(slots=True)
class KeyedBuckets:
    """One token bucket per key, each holding up to ``burst`` tokens refilled at ``rate``.

    A key seen for the first time starts full. At most ``capacity`` keys are kept: when a new
    key would pass it, buckets that have refilled to full (their clients quiet for a while) are
    forgotten first, then the least recently used; a forgotten key starts full again, which
    errs towards letting a client in. ``rate`` 0 means no limit (``take`` is always True).
    """

    rate: float
    burst: float
    capacity: int = BUCKETS
    # key -> (tokens, monotonic time they were counted); insertion order is use order.
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str, now: float) -> bool:
        """Take one token for ``key``; False (and nothing taken) when its bucket is empty."""
        if self.rate <= 0:
            return True
        buckets = self._buckets
        entry = buckets.pop(key, None)
        tokens = self.burst if entry is None else refill(*entry, now, self.rate, self.burst)
        if entry is None and len(buckets) >= self.capacity:
            self._forget(now)
        allowed = tokens >= 1.0
        buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    def _forget(self, now: float) -> None:
        buckets = self._buckets
        full = [
            k
            for k, (t, s) in buckets.items()
            if refill(t, s, now, self.rate, self.burst) >= self.burst
        ]
        for key in full:
            del buckets[key]
        while len(buckets) >= self.capacity:
            del buckets[next(iter(buckets))]

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(slots=True)
class Counts:
    """How many of something each key holds (open websockets per address or subject), each at
    most ``limit`` (0: no limit). Memory follows what is held: a key at 0 is dropped."""

    limit: int
    _held: dict[str, int] = field(default_factory=dict)

    def acquire(self, key: str) -> bool:
        """Count one more for ``key``; False (nothing counted) when it holds ``limit`` already."""
        held = self._held.get(key, 0)
        if self.limit and held >= self.limit:
            return False
        self._held[key] = held + 1
        return True

    def release(self, key: str) -> None:
        """Count one less for ``key`` (which must hold one)."""
        held = self._held[key] - 1
        if held:
            self._held[key] = held
        else:
            del self._held[key]

    def held(self, key: str) -> int:
        return self._held.get(key, 0)

    def __len__(self) -> int:
        return len(self._held)


def address_key(address: str) -> str:
    """The key a client address is limited under: an IPv4 address as it is, an IPv6 address by
    its /64 (one subscriber's network: a client can take any of its 2^64 addresses at will), and
    anything else (a Unix socket's peer, say) as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
