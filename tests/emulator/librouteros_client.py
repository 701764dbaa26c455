"""librouteros, blocking (``connect``) or async (``async_connect``), behind the same awaitables,
so one test body runs against both (the ``login`` fixture in ``conftest.py`` picks which)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from librouteros.query import Key

from gateway.emulator.server import RouterEmulator
from tests.support.emulators import Row, in_thread, rows_of


@dataclass(frozen=True, slots=True)
class Librouteros:
    """A logged-in librouteros ``Api`` (blocking) or ``AsyncApi``, behind the same awaitables."""

    api: Any
    blocking: bool

    async def __call__(self, cmd: str, **args: Any) -> list[Row]:
        if self.blocking:
            return await in_thread(lambda: list(self.api(cmd, **args)))
        return await rows_of(self.api(cmd, **args))

    async def raw(self, cmd: str, *words: str) -> list[Row]:
        """``rawCmd``: the words go on the wire exactly as given."""
        if self.blocking:
            return await in_thread(lambda: list(self.api.rawCmd(cmd, *words)))
        return await rows_of(self.api.rawCmd(cmd, *words))

    async def select(self, path: str, *keys: str, where: Iterable[Any] = ()) -> list[Row]:
        """``api.path(path).select(*keys).where(*where)``: ``.proplist`` then the query words."""
        query = self.api.path(path).select(*(Key(k) for k in keys)).where(*where)
        if self.blocking:
            return await in_thread(lambda: list(query))
        return await rows_of(query)


class Login(Protocol):
    async def __call__(
        self, router: RouterEmulator, *, legacy: bool = False, **options: Any
    ) -> Librouteros: ...
