"""A traffic frame's rows, found in its one encoding and spliced per filter: pure.

A frame is one JSON object whose row list (under the key its ``source`` names: ``interfaces``,
``queues``, ``hotspot``) holds one object per row. orjson writes nothing between values but the
separators, so a frame's encoding is its *head* (everything up to and including the list's
``[``), the rows' own encodings joined by commas, and its *tail* (from the ``]`` on).
:func:`encode` encodes the frame once and remembers where each row lies in its encoding
(:class:`Rows`); the frame a filter lets through is then the head, the rows it selects and the
tail (:meth:`Rows.splice`), byte for byte what ``orjson.dumps(filter_traffic(frame, flt))``
gives, at the cost of the bytes it holds rather than of one match per row per filter.

Which rows a filter selects depends only on the rows' names. A :class:`Layout` is the names of a
frame's rows; consecutive frames with the same names share one, and with it each filter's
selection, until the router's interface set changes (a PPPoE customer comes or goes).

Why positions into one encoding rather than a list of row encodings: a history ring holds
hundreds of frames, and 4 bytes a row for its position cost a tenth of a bytes object per row
(about 40 bytes), while the frame's whole encoding is needed anyway for viewers of every row.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from itertools import accumulate
from typing import Final

import orjson

from gateway.core.filters import InterfaceFilter
from gateway.core.sources import DEFAULT_SOURCE

__all__ = ["NAME_KEY", "Layout", "Rows", "Selection", "encode", "row_names"]

NAME_KEY: Final = "name"
"""The key of the row field that filters match (in the rows of every source)."""

_SELECTIONS: Final = 65536
"""Most filters a layout remembers a selection for (it starts over past that): more than the
distinct filters of the viewers one process serves, bounded for a layout that lives for days."""


class Selection:
    """The positions of the rows a filter lets through, ascending.

    A layout hands out one object per distinct tuple of positions, so two filters that select
    the same rows (``["<pppoe-alice>"]`` and ``["<pppoe-al*>"]``) share it, and a tick's caches
    key on it by identity (no hashing of the positions).
    """

    __slots__ = ("positions",)

    def __init__(self, positions: tuple[int, ...]) -> None:
        self.positions = positions

    def __repr__(self) -> str:
        return f"Selection({self.positions!r})"


class Layout:
    """The names of a frame's rows (None for a row with no name a filter could match), and
    what each filter selects among them, remembered while frames keep these names.

    Owned by the frames that have these names (a topic's latest frame and its ring). The
    caches grow as the current layout's filters ask (``select``), and are dropped when a frame
    with other names replaces it (``forget``): an older layout lives on in the history ring
    only for backfills, which select without remembering.
    """

    __slots__ = ("_interned", "_positions", "_repeated", "_selections", "names")

    def __init__(self, names: tuple[str | None, ...]) -> None:
        self.names = names
        # name -> its position (built on first use): a filter of names looks its few up.
        self._positions: dict[str, int] | None = None
        # Every position of each name that occurs more than once (routers' names are unique;
        # a frame from elsewhere need not be). None when no name repeats.
        self._repeated: dict[str, tuple[int, ...]] | None = None
        # Each filter's selection, and one Selection per distinct tuple (see Selection).
        self._selections: dict[InterfaceFilter, Selection] = {}
        self._interned: dict[tuple[int, ...], Selection] = {}

    def select(self, flt: InterfaceFilter, *, remember: bool = True) -> Selection:
        """The rows ``flt`` lets through. With ``remember`` (the current layout: live frames)
        computed once per filter and kept, with the name index it used; without (an older
        layout, for a backfill) computed afresh and nothing kept."""
        selection = self._selections.get(flt)
        if selection is not None:
            return selection
        if not remember:
            positions, repeated = self._positions, self._repeated
            if positions is None:
                positions, repeated = _index(self.names)
            return Selection(flt.select(self.names, _lookup(positions, repeated)))
        if self._positions is None:
            self._positions, self._repeated = _index(self.names)
        positions_ = flt.select(self.names, _lookup(self._positions, self._repeated))
        if len(self._selections) >= _SELECTIONS:
            self._selections.clear()
            self._interned.clear()
        selection = self._interned.get(positions_)
        if selection is None:
            selection = self._interned[positions_] = Selection(positions_)
        self._selections[flt] = selection
        return selection

    @property
    def remembered(self) -> int:
        """How many filters' selections this layout keeps."""
        return len(self._selections)

    def forget(self) -> None:
        """Drop what was remembered: frames with other names took over (see the class)."""
        self._selections = {}
        self._interned = {}
        self._positions = self._repeated = None

    def same(self, names: tuple[str | None, ...]) -> bool:
        """Whether ``names`` are this layout's (the interface set did not change)."""
        return self.names == names


def _index(
    names: tuple[str | None, ...],
) -> tuple[dict[str, int], dict[str, tuple[int, ...]] | None]:
    """Each name's position, and every position of the names that occur more than once."""
    index = {name: i for i, name in enumerate(names) if name is not None}
    if len(index) == len(names) - names.count(None):
        return index, None
    everywhere: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        if name is not None:
            everywhere.setdefault(name, []).append(i)
    return index, {n: tuple(at) for n, at in everywhere.items() if len(at) > 1}


def _lookup(
    index: dict[str, int], repeated: dict[str, tuple[int, ...]] | None
) -> Callable[[str], Iterable[int]]:
    """Every position of a name, from ``_index``'s answer."""

    def positions(name: str) -> Iterable[int]:
        position = index.get(name)
        if position is None:
            return ()
        if repeated is not None and name in repeated:
            return repeated[name]
        return (position,)

    return positions


class Rows:
    """Where each row of a frame lies in the frame's encoding ``text``, and the rows' layout.

    Row ``i`` is ``text[starts[i]:starts[i + 1] - 1]`` (a comma follows each row but the
    last, whose end is ``starts[n] - 1`` too: ``starts`` has one entry more than there are
    rows). The head is ``text[:starts[0]]``, the tail ``text[tail:]``.
    """

    __slots__ = ("layout", "starts", "tail", "text")

    def __init__(self, text: bytes, layout: Layout, starts: array[int], tail: int) -> None:
        self.text = text
        self.layout = layout
        self.starts = starts
        self.tail = tail

    def __len__(self) -> int:
        return len(self.starts) - 1

    def splice(self, selection: Selection) -> bytes:
        """The frame's encoding with only the selected rows (positions of this frame's layout):
        the head, those rows joined by commas, the tail. A run of neighbouring rows is copied
        as one slice, commas included."""
        text, starts = self.text, self.starts
        positions = selection.positions
        count = len(positions)
        if count == len(starts) - 1:
            return text  # every row
        head = text[: starts[0]]
        tail = text[self.tail :]
        if count == 1:
            i = positions[0]
            return b"".join((head, text[starts[i] : starts[i + 1] - 1], tail))
        parts = [head]
        i = 0
        while i < count:
            first = last = positions[i]
            i += 1
            while i < count and positions[i] == last + 1:
                last = positions[i]
                i += 1
            if len(parts) > 1:
                parts.append(b",")
            parts.append(text[starts[first] : starts[last + 1] - 1])
        parts.append(tail)
        return b"".join(parts)


def row_names(rows: list[object], name_key: str = NAME_KEY) -> tuple[str | None, ...]:
    """The name a filter matches for each row, as ``filter_traffic`` reads it: ``str`` of the
    row's ``name_key`` field; None for a row that is not an object or has no such field (no
    filter but "every row" lets it through)."""
    try:
        names = tuple([row[name_key] for row in rows])  # type: ignore[index]
    except (KeyError, TypeError, IndexError):
        pass
    else:
        if all(type(name) is str for name in names):
            return names  # the common case: objects with a text name
    return tuple(
        str(row[name_key]) if isinstance(row, dict) and name_key in row else None for row in rows
    )


def encode(
    data: dict[str, object],
    previous: Layout | None = None,
    *,
    rows_key: str | None = None,
    name_key: str = NAME_KEY,
) -> Rows:
    """Encode a frame once and find its rows; ``Rows.text`` is exactly ``orjson.dumps(data)``.

    The rows are the list under ``rows_key``, by default the key its ``source`` names (as
    ``rows_of`` reads a frame: ``interfaces`` for a frame without one); it must be a list
    (``TypeError`` otherwise, as for ``filter_traffic``).
    The layout is ``previous`` when the rows' names are its names, else a new one.
    ``orjson.JSONEncodeError`` for what orjson cannot encode, as ``orjson.dumps(data)``.
    """
    if rows_key is None:
        rows_key = str(data.get("source", DEFAULT_SOURCE))
    rows = data.get(rows_key)
    if not isinstance(rows, list):
        raise TypeError(f"not a traffic frame: {rows_key!r} is not a list")
    head, tail = _ends(data, rows_key)
    text = orjson.dumps(data)
    end = len(text) - len(tail)
    starts = _starts(text, rows, len(head), end)
    if starts is None:
        # Rows that are not all objects, or text that reads like a row boundary: each row
        # encoded apart. Each row starts one byte (a comma) after the previous one ends.
        pieces = list(map(orjson.dumps, rows))
        starts = array("I", accumulate(map((1).__add__, map(len, pieces)), initial=len(head)))
    names = row_names(rows, name_key)
    layout = previous if previous is not None and previous.same(names) else Layout(names)
    return Rows(text, layout, starts, end)


_BOUNDARY: Final = b'},{"'
"""Between two rows that are objects with keys: the end of one, the comma, the start of the
next."""


def _starts(text: bytes, rows: list[object], head: int, end: int) -> array[int] | None:
    """Where each row lies in ``text``, the frame's encoding whose rows run from ``head`` to
    ``end``, found in the one encoding rather than by encoding each row apart (a call of orjson
    per row cost more than encoding the whole frame); None when it cannot be told that way.

    When every row is an object with at least one key, each encodes as ``{"...}`` and the rows
    are separated by ``},{"``. The same four bytes can occur inside a row too (a text ending
    in ``},{``, a list of objects), but never overlapping a boundary (nor one another): so
    splitting the rows' text on them gives exactly one piece per row when it gives as many
    pieces as there are rows, and more pieces otherwise (None: the caller encodes each row
    apart).
    """
    count = len(rows)
    if count < 2:
        return array("I", [head] if not count else [head, end + 1])
    if not all([type(row) is dict and row for row in rows]):
        return None
    pieces = text[head:end].split(_BOUNDARY)
    if len(pieces) != count:
        return None
    # A piece lacks its row's "{" and '"' (all but the first) and its "}" (all but the last):
    # each row starts four bytes after the previous piece ends, counted from two bytes before
    # the first row, whose start, like the end of the last, is then set straight.
    starts = array("I", accumulate(map((4).__add__, map(len, pieces)), initial=head - 2))
    starts[0] = head
    starts[count] = end + 1
    return starts


def _ends(data: dict[str, object], rows_key: str) -> tuple[bytes, bytes]:
    """The head and tail of ``data``'s encoding around the list under ``rows_key``."""
    keys = list(data)
    at = keys.index(rows_key)
    before = orjson.dumps({key: data[key] for key in keys[:at]})
    head = b"".join((before[:-1], b"," if at else b"", orjson.dumps(rows_key), b":["))
    if at == len(keys) - 1:
        return head, b"]}"
    after = orjson.dumps({key: data[key] for key in keys[at + 1 :]})
    return head, b"]," + after[1:]
