"""What a router's lease (``gateway.cluster_lease``) needs of Redis: the store's calls
(``LeaseStore``) and what taking the lease answers (``Acquired``).

The store is ``gateway.cluster_link.Link`` in production; tests give a lease one of their own.
No Redis client here: the lease's modules stay loadable without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.core.cluster import Demanded, Entry, RouterKeys, StoredStatus
from gateway.core.sources import DEFAULT_SOURCE

__all__ = ["Acquired", "LeaseStore"]


@dataclass(frozen=True, slots=True)
class Acquired:
    """The answer to an acquire: whether the lease was taken, Redis time (ms), and the router's
    last published seq (of any source) and interfaces status JSON (None when there is none);
    ``statuses``: each source's status in Redis, with its mark; ``wanted``: the sources some
    replica wants (what a new holder polls)."""

    taken: bool
    now_ms: int
    seq: int | None
    status: bytes | None
    statuses: Mapping[str, StoredStatus] = field(default_factory=dict, compare=False)
    wanted: frozenset[str] = field(default_factory=frozenset, compare=False)


class LeaseStore(Protocol):
    """What a lease needs of Redis (``gateway.cluster_link.Link``; the scripts are
    ``gateway.cluster_scripts``). Every call has a deadline and raises ``RedisUnavailable``
    when Redis did not answer in time."""

    @property
    def degraded(self) -> bool:
        """Whether Redis has been unreachable for a lease TTL: replicas poll for themselves."""
        ...

    def may_call(self) -> bool:
        """Whether a call may be made now (False while backing off after failures)."""
        ...

    async def acquire(
        self,
        keys: RouterKeys,
        token: str,
        ttl_ms: int,
        replica: str,
        demand_ms: int,
        *,
        sources: Sequence[str] = (DEFAULT_SOURCE,),
    ) -> Acquired:
        """``ACQUIRE``: announce demand for ``sources`` until ``demand_ms`` from now, take the
        lease if free."""
        ...

    async def tick(
        self,
        keys: RouterKeys,
        token: str,
        ttl_ms: int,
        replica: str,
        demand_ms: int,
        maxlen: int,
        entries: Sequence[Entry],
        *,
        sources: Sequence[str] = (DEFAULT_SOURCE,),
    ) -> Demanded:
        """``TICK``: -1 when the lease is lost, else the demand entries of every replica (and
        the sources they want); this replica's demand is for ``sources`` (none without
        ``demand_ms``)."""
        ...

    async def release(
        self,
        keys: RouterKeys,
        token: str,
        replica: str,
        maxlen: int,
        status: Entry | Sequence[Entry] | None,
    ) -> bool:
        """``RELEASE``: give the lease up if it is ``token``'s, appending ``status`` (one per
        source) first."""
        ...

    async def withdraw(self, keys: RouterKeys, replica: str) -> None:
        """Take this replica's demand for the router back."""
        ...

    async def statuses(self, keys: RouterKeys) -> Mapping[str, StoredStatus]:
        """The router's current status in Redis (JSON and mark), per source that has one."""
        ...
