"""Remembering what was already reported, in bounded memory.

"Log it once" needs a memory of what was logged. When the keys come from outside (an ``Origin``
header, say) a client can invent a million of them, so the memory has a fixed size: once it is
full, nothing new is remembered, and so nothing new is reported (the owner says so once, at the
moment it fills up). Forgetting old keys instead would let the same million keys be reported
again and again.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["FirstSeen"]

K = TypeVar("K", bound=Hashable)


class FirstSeen(Generic[K]):
    """Which keys were seen, remembering at most ``limit`` of them.

    :meth:`first` is True exactly once per key, while there is room; :attr:`full` turns True
    with the ``limit``-th key, after which :meth:`first` is always False. :meth:`clear` forgets
    everything (for memories that reset, such as "failures since the last success").
    """

    __slots__ = ("_seen", "limit")

    def __init__(self, limit: int) -> None:
        """Raise ``ValueError`` unless ``limit`` is positive."""
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        self.limit = limit
        # The keys seen so far; grows to `limit` and no further.
        self._seen: set[K] = set()

    def first(self, key: K) -> bool:
        """True if ``key`` was not seen before and there was room to remember it."""
        seen = self._seen
        if key in seen or len(seen) >= self.limit:
            return False
        seen.add(key)
        return True

    @property
    def full(self) -> bool:
        """True once ``limit`` keys are remembered: no new key will be reported."""
        return len(self._seen) >= self.limit

    def __len__(self) -> int:
        return len(self._seen)

    def clear(self) -> None:
        """Forget every key."""
        self._seen.clear()
