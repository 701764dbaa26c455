"""The JSON messages of the websocket protocol and the REST snapshot, as plain dicts.

Building and encoding are separate: these functions return dicts whose key order is the order on
the wire, and the hub encodes each one once with orjson and fans the same bytes out to every
subscriber. :func:`filter_traffic` defines what a filtered viewer gets; the hub gets the same
bytes without matching every interface each tick, by splicing rows encoded once
(``gateway.core.rows``).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from gateway.core.model import InterfaceRate, RouterState
from gateway.core.rates import Rates
from gateway.core.sessions import SessionView
from gateway.core.sources import DEFAULT_SOURCE, HotspotSample, QueueSample, Reading, Source

__all__ = [
    "EXACT",
    "MAX_GLOB_CHARACTERS",
    "MAX_STARS",
    "PROTOCOL_VERSION",
    "ErrorCode",
    "InterfaceFilter",
    "error_frame",
    "filter_traffic",
    "hello_frame",
    "hotspot_frame",
    "is_stale",
    "literal_glob",
    "name_patterns",
    "queue_frame",
    "rows_of",
    "status_frame",
    "traffic_frame",
]

PROTOCOL_VERSION: Final = 1
"""The ``v`` of ``hello`` and ``traffic`` frames."""

# The characters that make a glob more than a literal name (see fnmatch).
_MAGIC: Final = re.compile(r"[*?\[]")
# One of them written as a literal, the way literal_glob writes it: [*], [?] or [[].
_ESCAPED: Final = re.compile(r"\[([*?\[])\]")
# A character class as fnmatch reads one: "[", an optional "!", an optional first "]", then up
# to the next "]". A "[" with no "]" after it is a literal.
_CLASS: Final = re.compile(r"\[!?\]?[^\]]*\]")

MAX_STARS: Final = 4
"""Most ``*`` one glob of a name filter may hold (a ``*`` inside ``[...]`` is a literal).

Why: each ``*`` is a scan of the name when matching and a group in the compiled pattern; a glob
of 120 stars cost a third of a second to compile. Real patterns (``<pppoe-*>``, ``*uplink*``)
hold one or two."""

MAX_GLOB_CHARACTERS: Final = 256
"""Most characters all the globs of one name filter list may hold together.

Why: compiling a glob costs about 2 microseconds a character, so this bounds what one subscribe
(or token) can make the gateway compile. ``{"exact": name}`` entries do not count: they are
looked up in a set, never compiled."""

EXACT: Final = "exact"
"""The key of an exact-name entry in a name filter list: ``{"exact": "ether1 [WAN]"}``."""

ErrorCode = Literal[
    "bad_request",
    "unknown_router",
    "too_many_subscriptions",
    "refresh_refused",
    "rate_limited",
]
"""The ``code`` of an ``error`` frame; the connection stays open after any of them. The first
three answer a subscribe (or unsubscribe; a router outside the token is an ``unknown_router``);
``refresh_refused`` answers a token refresh, and ``rate_limited`` a message sent past the
connection's rate (which was not acted on)."""


def traffic_frame(
    router: str,
    seq: int,
    ts: float,
    interval: float,
    stale: bool,
    rates: Sequence[InterfaceRate],
    sessions: SessionView | None = None,
) -> dict[str, object]:
    """A ``traffic`` frame of the ``interfaces`` source: one poll of one router.

    Keys, in order: ``type, v, router, source, seq, ts, interval, stale, interfaces``; each
    interface has ``id, name, type, running, disabled, rx_bps, tx_bps, rx_pps, tx_pps``, then
    ``comment`` when it has one and ``session`` when ``sessions`` joins a PPP session to it.
    Rates are rounded to one decimal (sub-decibit precision is noise and costs bytes on every
    frame to every viewer); an undefined rate stays ``None`` (JSON ``null``). ``ts`` is Unix
    time, passed through as is.
    """
    rows: list[dict[str, object]] = []
    add = rows.append
    # Unpacked and rounded inline: this runs once per interface per poll, and a call per rate
    # was a fifth of its cost. Only names starting with "<" can be PPP interfaces.
    for (
        interface_id,
        name,
        kind,
        running,
        disabled,
        rx_bps,
        tx_bps,
        rx_pps,
        tx_pps,
        comment,
    ) in rates:
        row: dict[str, object] = {
            "id": interface_id,
            "name": name,
            "type": kind,
            "running": running,
            "disabled": disabled,
            "rx_bps": None if rx_bps is None else round(rx_bps, 1),
            "tx_bps": None if tx_bps is None else round(tx_bps, 1),
            "rx_pps": None if rx_pps is None else round(rx_pps, 1),
            "tx_pps": None if tx_pps is None else round(tx_pps, 1),
        }
        if comment is not None:
            row["comment"] = comment
        if sessions is not None and name[:1] == "<":
            session = sessions.interface(name, interface_id)
            if session is not None:
                row["session"] = session
        add(row)
    return _frame(router, "interfaces", seq, ts, interval, stale, rows)


def _frame(
    router: str,
    source: Source,
    seq: int,
    ts: float,
    interval: float,
    stale: bool,
    rows: list[dict[str, object]],
) -> dict[str, object]:
    return {
        "type": "traffic",
        "v": PROTOCOL_VERSION,
        "router": router,
        "source": source,
        "seq": seq,
        "ts": ts,
        "interval": interval,
        "stale": stale,
        source: rows,
    }


def _rounded(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 1)


def queue_frame(
    router: str,
    seq: int,
    ts: float,
    interval: float,
    stale: bool,
    reading: Reading[QueueSample],
    rates: Sequence[Rates],
    sessions: SessionView | None = None,
) -> dict[str, object]:
    """A ``traffic`` frame of the ``queues`` source: ``reading``'s queues with ``rates`` (one
    per queue, in order: see ``gateway.core.rates.compute_queue_rates``).

    Keys as :func:`traffic_frame`'s, the rows under ``queues``; each queue has ``id, name,
    target``, ``parent`` and ``comment`` when it has them, ``dynamic, disabled, up_bps,
    down_bps, up_pps, down_pps`` (rounded to one decimal), ``max_up_bps, max_down_bps`` (the
    plan in bits/s, None when unlimited), ``util_up, util_down`` (percent of the plan, one
    decimal; None when unlimited or without a rate), then ``session`` when ``sessions`` joins
    one.
    """
    rows: list[dict[str, object]] = []
    add = rows.append
    join = None if sessions is None else sessions.queue
    # Unpacked and computed inline, one dict literal for the fields every queue has: this runs
    # once per queue per poll, thousands of times on an ISP router.
    for (
        queue_id,
        name,
        target,
        parent,
        comment,
        dynamic,
        disabled,
        max_up,
        max_down,
        _,
    ), (up_bps, down_bps, up_pps, down_pps) in zip(reading.rows, rates, strict=True):
        row: dict[str, object] = {"id": queue_id, "name": name, "target": target}
        if parent is not None:
            row["parent"] = parent
        if comment is not None:
            row["comment"] = comment
        row |= {
            "dynamic": dynamic,
            "disabled": disabled,
            "up_bps": None if up_bps is None else round(up_bps, 1),
            "down_bps": None if down_bps is None else round(down_bps, 1),
            "up_pps": None if up_pps is None else round(up_pps, 1),
            "down_pps": None if down_pps is None else round(down_pps, 1),
            "max_up_bps": max_up,
            "max_down_bps": max_down,
            "util_up": None
            if up_bps is None or max_up is None
            else round(up_bps * 100 / max_up, 1),
            "util_down": (
                None
                if down_bps is None or max_down is None
                else round(down_bps * 100 / max_down, 1)
            ),
        }
        if join is not None:
            session = join(name, target, queue_id)
            if session is not None:
                row["session"] = session
        add(row)
    return _frame(router, "queues", seq, ts, interval, stale, rows)


def hotspot_frame(
    router: str,
    seq: int,
    ts: float,
    interval: float,
    stale: bool,
    reading: Reading[HotspotSample],
    rates: Sequence[Rates],
) -> dict[str, object]:
    """A ``traffic`` frame of the ``hotspot`` source: ``reading``'s users with ``rates``.

    Keys as :func:`traffic_frame`'s, the rows under ``hotspot``; each user has ``id, name``
    (the login), ``server, address, mac, uptime`` (seconds; None when not sent), ``comment``
    when it has one, then ``up_bps, down_bps, up_pps, down_pps`` (up: what the user sent).
    """
    rows: list[dict[str, object]] = []
    add = rows.append
    for user, (up_bps, down_bps, up_pps, down_pps) in zip(reading.rows, rates, strict=True):
        row: dict[str, object] = {
            "id": user.id,
            "name": user.user,
            "server": user.server,
            "address": user.address,
            "mac": user.mac,
            "uptime": user.uptime,
        }
        if user.comment is not None:
            row["comment"] = user.comment
        row["up_bps"] = _rounded(up_bps)
        row["down_bps"] = _rounded(down_bps)
        row["up_pps"] = _rounded(up_pps)
        row["down_pps"] = _rounded(down_pps)
        add(row)
    return _frame(router, "hotspot", seq, ts, interval, stale, rows)


def rows_of(frame: dict[str, object]) -> list[object]:
    """The row list of a ``traffic`` frame: under the key named by its ``source`` (a frame
    without one, from a gateway older than sources, is of ``interfaces``).

    Raises TypeError when that key does not hold a list.
    """
    rows = frame.get(str(frame.get("source", DEFAULT_SOURCE)))
    if not isinstance(rows, list):
        raise TypeError("not a traffic frame: no list of rows under its source")
    return rows


PUBLIC_ERROR: Final = "the router is unavailable"
"""The ``error`` a restricted viewer (a customer's token) is shown for any failure: the full text
names the router's address, API port and user, which only operators may see."""


def public_status(status: dict[str, object]) -> dict[str, object]:
    """``status`` as a restricted viewer sees it: any ``error`` replaced by ``PUBLIC_ERROR``
    (the same dict when it has none)."""
    if status.get("error") is None:
        return status
    return {**status, "error": PUBLIC_ERROR}


def status_frame(
    router: str,
    state: RouterState,
    error: str | None,
    since: float,
    *,
    degraded: bool = False,
    source: Source = DEFAULT_SOURCE,
) -> dict[str, object]:
    """A ``status`` frame: ``{"type": "status", "router", "source", "state", "error",
    "since"}``, the state of one source of a router.

    ``error`` is a short human-readable reason (never a secret) or ``None``; ``since`` is the Unix
    time the source entered ``state``. With ``degraded`` (cluster mode, Redis unreachable: this
    replica polls the router itself) the frame ends with ``"degraded": true``; otherwise the
    key is absent.
    """
    status: dict[str, object] = {
        "type": "status",
        "router": router,
        "source": source,
        "state": state,
        "error": error,
        "since": since,
    }
    if degraded:
        status["degraded"] = True
    return status


def hello_frame(routers: Sequence[tuple[str, str]], heartbeat: float) -> dict[str, object]:
    """The ``hello`` frame sent on connect: ``type, v, routers: [{id, name}], heartbeat``.

    ``routers`` are ``(id, name)`` pairs, already limited to what the viewer may see.
    ``heartbeat`` is the server's ping interval in seconds.
    """
    return {
        "type": "hello",
        "v": PROTOCOL_VERSION,
        "routers": [{"id": router_id, "name": name} for router_id, name in routers],
        "heartbeat": heartbeat,
    }


def error_frame(code: ErrorCode, message: str) -> dict[str, object]:
    """An ``error`` frame: ``{"type": "error", "code", "message"}``."""
    return {"type": "error", "code": code, "message": message}


def is_stale(
    state: RouterState, frame_ts: float, now: float, interval: float, timeout: float
) -> bool:
    """Whether a traffic frame made at ``frame_ts`` is stale at ``now`` (both Unix seconds).

    Stale when the router is not ``up``, or when the frame is older than ``2 * interval +
    timeout``: one missed poll is jitter, two missed polls plus a full command deadline is not.
    """
    return state != "up" or now - frame_ts > 2 * interval + timeout


@dataclass(frozen=True, slots=True)
class InterfaceFilter:
    """Which interfaces a viewer sees, by name glob. Hashable; equal filters hash equal.

    Globs follow :func:`fnmatch.fnmatchcase`: case-sensitive, ``*`` any run, ``?`` one
    character, ``[seq]``/``[!seq]`` a character class. ``<`` and ``>`` are ordinary characters,
    so ``"<pppoe-*>"`` matches ``<pppoe-alice>`` as written. ``[`` is special: to match a literal
    ``[`` write ``[[]``.

    The filter is a conjunction of clauses, each a disjunction of globs: a name passes when, in
    every clause, at least one glob matches it. :meth:`of` makes one clause; :meth:`intersect`
    joins clauses (a subscription's own list narrowing a token's list cannot, in general, be
    written as one glob list). No clause at all means every interface (:meth:`all`); a clause
    with no glob matches nothing.

    The form is canonical: globs in a clause are sorted and unique, clauses are sorted and
    unique, and a clause implied by a narrower one is dropped. So ``of(["b", "a"])``,
    ``of(["a", "b", "a"])`` and ``of(["a", "b"]).intersect(all())`` are equal and hash equal:
    the hub keys its per-tick encodings by filter.
    """

    clauses: tuple[tuple[str, ...], ...] = ()
    # One matcher per clause, from a cache shared by every filter: a filter is matched against
    # every interface of every tick, and a client that sends the same subscribe again (or a
    # thousand viewers of one token) must not compile it again.
    _matchers: tuple[_Clause, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        clauses = _canonical(self.clauses)
        # Frozen dataclass: the canonical form replaces whatever the caller passed.
        object.__setattr__(self, "clauses", clauses)
        object.__setattr__(self, "_matchers", tuple(map(_clause, clauses)))

    @classmethod
    def all(cls) -> InterfaceFilter:
        """The filter every interface passes."""
        return cls()

    @classmethod
    def of(cls, globs: Iterable[str]) -> InterfaceFilter:
        """The filter a name passes when any of ``globs`` matches it.

        An empty ``globs`` matches nothing; callers that mean "no restriction" use :meth:`all`.
        Exact names enter as :func:`literal_glob` globs (:func:`name_patterns` reads both kinds).
        """
        return cls((tuple(globs),))

    @property
    def is_all(self) -> bool:
        """Whether every interface passes (the hub can then share the unfiltered frame)."""
        return not self.clauses

    def matches(self, name: str) -> bool:
        """Whether the interface called ``name`` passes every clause."""
        return all(matcher.matches(name) for matcher in self._matchers)

    def intersect(self, other: InterfaceFilter) -> InterfaceFilter:
        """The filter a name passes only when it passes both ``self`` and ``other``."""
        return InterfaceFilter(self.clauses + other.clauses)

    def within(self, other: InterfaceFilter) -> bool:
        """Whether every name this filter passes certainly passes ``other`` too.

        True when each of ``other``'s clauses is implied by one of this filter's (the same
        clause, or one whose every glob is in it or names one name it matches). Where that
        cannot be told cheaply and for certain the answer is False: a narrower filter written
        with different globs may be judged not within, a wider one never within. A token
        refresh relies on it (``gateway.auth.Grant.within``).
        """
        return all(
            theirs in self.clauses or any(_implies(mine, theirs) for mine in self.clauses)
            for theirs in other.clauses
        )

    def select(
        self, names: Sequence[str | None], positions: Callable[[str], Iterable[int]]
    ) -> tuple[int, ...]:
        """The positions in ``names`` of the names that pass, ascending (None never passes).

        ``positions(name)`` gives every position of ``name`` in ``names``. A clause of names
        only (a customer's token: ``["<pppoe-alice>"]``) is looked up with it, so the cost is
        its few names, not one match per interface; otherwise each name is matched (a lookup
        of the clause's remembered verdict, see ``_Clause.matches``).
        """
        if not self.clauses:
            return tuple(range(len(names)))
        matchers = self._matchers
        for matcher in matchers:
            if matcher.pattern is None:
                found = sorted({i for name in matcher.names for i in positions(name)})
                if len(matchers) == 1:
                    return tuple(found)
                # A position found by name holds that name (never None).
                return tuple(i for i in found if self.matches(str(names[i])))
        matches = self.matches
        return tuple(i for i, name in enumerate(names) if name is not None and matches(name))


def literal_glob(name: str) -> str:
    """The glob that matches ``name`` and no other name.

    ``*``, ``?`` and ``[`` are each written as a one-character class (``[*]``, ``[?]``,
    ``[[]``); every other character (``]``, ``\\``, ``<``, spaces, quotes, anything non-ASCII)
    is already literal in a glob. ``literal_glob("ether1 [WAN]")`` is ``"ether1 [[]WAN]"``.
    """
    if _plain(name):
        return name
    return _MAGIC.sub(lambda match: f"[{match.group()}]", name)


def _plain(text: str) -> bool:
    """Whether ``text`` holds none of ``*``, ``?`` and ``[`` (so as a glob it is itself).

    The common case for names; three scans for one character each cost a tenth of one regex
    search for any of them."""
    return "*" not in text and "?" not in text and "[" not in text


def name_patterns(
    entries: object, *, max_entries: int | None = None, max_length: int | None = None
) -> tuple[str, ...]:
    """Read a name filter list as clients write it, as globs for :meth:`InterfaceFilter.of`.

    ``entries`` must be a list; each entry is either a string, a glob a user typed as a pattern
    (``"<pppoe-*>"``), or ``{"exact": "name"}``, a name picked from a list, which matches that
    name only, whatever characters it holds (``{"exact": "ether1 [WAN]"}`` matches
    ``ether1 [WAN]``, never ``ether1 W``). Strings and names must be non-empty and at most
    ``max_length`` characters; the list at most ``max_entries`` long. Whatever the caller's
    limits, a glob holds at most :data:`MAX_STARS` ``*`` and the globs of the list at most
    :data:`MAX_GLOB_CHARACTERS` characters together, so no list costs much to compile or match.

    Raises ``ValueError`` saying what is wrong (and which limit), for the caller to prefix with
    where it was.
    """
    if not isinstance(entries, list):
        raise ValueError(f'expected a list of name globs and {{"{EXACT}": name}} objects')
    if max_entries is not None and len(entries) > max_entries:
        raise ValueError(f"at most {max_entries} entries, got {len(entries)}")
    globs = []
    glob_characters = 0
    for entry in entries:
        exact = isinstance(entry, dict) and len(entry) == 1 and EXACT in entry
        text = entry[EXACT] if exact else entry
        if not isinstance(text, str) or not text:
            raise ValueError(
                f'each entry must be a name glob (a non-empty string) or {{"{EXACT}": name}}, '
                f"got {_show(entry)}"
            )
        if max_length is not None and len(text) > max_length:
            raise ValueError(f"a name or glob is at most {max_length} characters long")
        if exact:
            globs.append(literal_glob(text))
            continue
        stars = _CLASS.sub("", text).count("*") if "*" in text else 0
        if stars > MAX_STARS:
            raise ValueError(f'a glob holds at most {MAX_STARS} "*", got {stars} in {_show(text)}')
        glob_characters += len(text)
        if glob_characters > MAX_GLOB_CHARACTERS:
            raise ValueError(
                f"the globs of one list hold at most {MAX_GLOB_CHARACTERS} characters together "
                f'({{"{EXACT}": name}} entries do not count)'
            )
        globs.append(text)
    return tuple(globs)


def _show(value: object) -> str:
    """A client's value for an error message, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def filter_traffic(frame: dict[str, object], flt: InterfaceFilter) -> dict[str, object]:
    """A copy of a ``traffic`` frame that keeps only the rows ``flt`` lets through, by their
    ``name`` (the rows of its source: see :func:`rows_of`).

    Shallow: the new frame has the same keys in the same order and a new row list holding the
    same row dicts, which nobody mutates after they are built.
    """
    rows = rows_of(frame)
    filtered = dict(frame)
    filtered[str(frame.get("source", DEFAULT_SOURCE))] = [
        row for row in rows if isinstance(row, dict) and flt.matches(str(row["name"]))
    ]
    return filtered


def _canonical(clauses: Iterable[Iterable[str]]) -> tuple[tuple[str, ...], ...]:
    unique = {tuple(sorted(set(clause))) for clause in clauses}
    # Absorption: when every name passing clause A also passes clause B, B adds nothing to the
    # conjunction. Dropping it makes f.intersect(f) == f, and a token's ["<pppoe-alice>"]
    # narrowed by a subscription's ["<pppoe-*>"] equal to the token's filter alone, so the hub
    # encodes that frame once for both.
    # Two different clauses can imply each other ({"ab", "a*"} and {"a*"}): they are
    # equivalent, and only the smaller (in sort order) stays, never neither.
    kept = [
        clause
        for clause in unique
        if not any(
            other != clause
            and _implies(other, clause)
            and (other < clause or not _implies(clause, other))
            for other in unique
        )
    ]
    return tuple(sorted(kept))


def _implies(narrow: tuple[str, ...], wide: tuple[str, ...]) -> bool:
    """Whether every name matching a glob of ``narrow`` also matches a glob of ``wide``.

    Decided only where it is cheap and certain: a glob that is in both, or a glob that matches
    one name only (see :func:`_literal`) that ``wide`` matches. Otherwise "no", which only
    costs an extra clause, never a wrong answer.
    """
    if len(narrow) > _ABSORB_LIMIT:
        return False
    matcher = _clause(wide)
    return all(glob in matcher.globs or _literal_passes(glob, matcher) for glob in narrow)


# Most globs a clause may have for absorption to be tried (each is one match against the other
# clause). Past it clauses are kept as they are: correct, only less shared between viewers.
_ABSORB_LIMIT: Final = 16


def _literal_passes(glob: str, matcher: _Clause) -> bool:
    name = _literal(glob)
    return name is not None and matcher.matches_once(name)


def _literal(glob: str) -> str | None:
    """The one name ``glob`` matches when it is a name (possibly written by
    :func:`literal_glob`), else None."""
    # split() alternates text between escapes and the escaped characters.
    parts = _ESCAPED.split(glob)
    if any(_MAGIC.search(text) for text in parts[::2]):
        return None
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class _Clause:
    """One clause, ready to match: its names looked up in a set, the rest of its globs compiled
    into one pattern (None when every glob is a name; ``(?!)`` when the clause is empty)."""

    globs: frozenset[str]
    names: frozenset[str]
    pattern: re.Pattern[str] | None
    # The pattern's answer per interface name, so each tick costs a lookup per interface rather
    # than a scan of the name per "*" of every glob. Shared by every filter with this clause;
    # holds router names only (see matches), and starts over when it reaches _VERDICTS.
    verdicts: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def matches(self, name: str) -> bool:
        """Whether ``name`` (an interface's, as a router sent it) passes this clause."""
        if name in self.names:
            return True
        if self.pattern is None:
            return False
        verdict = self.verdicts.get(name)
        if verdict is None:
            if len(self.verdicts) >= _VERDICTS:
                self.verdicts.clear()
            verdict = self.verdicts[name] = self.pattern.match(name) is not None
        return verdict

    def matches_once(self, name: str) -> bool:
        """:meth:`matches` without remembering the answer (for names a client wrote)."""
        return name in self.names or (
            self.pattern is not None and self.pattern.match(name) is not None
        )


# Most names a clause remembers its answer for: more than the interfaces of a big router.
_VERDICTS: Final = 4096


@functools.lru_cache(maxsize=128)
def _clause(globs: tuple[str, ...]) -> _Clause:
    """The matcher of a canonical clause (sorted, unique globs), compiled once while it is among
    the 128 most recently used: every filter with that clause shares it."""
    names: set[str] = set()
    patterns: list[str] = []
    for glob in globs:
        name = glob if _plain(glob) else _literal(glob)
        if name is not None:
            names.add(name)
        else:
            # fnmatch.translate anchors each glob at the end (\Z); re.match anchors the start.
            # Its translation of "*" is an atomic group, so matching costs one scan of the
            # name per "*", never backtracking across them.
            patterns.append(f"(?:{fnmatch.translate(glob)})")
    if not globs:
        # Matches nothing: an empty alternation would match everything.
        patterns.append("(?!)")
    pattern = re.compile("|".join(patterns)) if patterns else None
    return _Clause(frozenset(globs), frozenset(names), pattern)
