"""Cluster mode's pure rules: Redis key names, the lease's lifetime, the seq rule, the demand
entries, the stream entries that carry frames from the replica that polls a router to every
other replica (one stream per router and source), and the order of status messages.

No I/O and no clock: times come in as arguments. ``gateway.cluster_link`` does the Redis calls.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final, Literal

import orjson

from gateway.core.sources import DEFAULT_SOURCE, SOURCES

__all__ = [
    "STATUS_SLACK",
    "Demanded",
    "Entry",
    "EntryError",
    "EntryKind",
    "RedisUnavailable",
    "RouterKeys",
    "StatusMark",
    "StoredStatus",
    "demand_member",
    "entry_args",
    "entry_id",
    "entry_place",
    "follows",
    "lease_ttl_ms",
    "member_source",
    "meta_field",
    "parse_entry",
    "parse_status_at",
    "replica_id",
    "router_keys",
    "status_at",
    "status_mark",
    "status_shown",
    "stream_maxlen",
    "supersedes",
    "takeover_seq",
]

EntryKind = Literal["traffic", "status"]
"""What a stream entry carries: a ``traffic`` frame or a ``status`` message."""

STATUS_SLACK: Final = 64
"""Entries a router's stream keeps beyond ``history``: its status messages share the stream with
the traffic frames, and a subscriber on any replica must still find ``history`` frames."""

# A host name as it may appear in a replica id: anything else becomes "-" (ids go into logs).
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class RouterKeys:
    """The Redis keys of one router, all under one hash tag (``{prefix}``).

    ``lease``: the holder's token (a string with a TTL). ``demand``: a sorted set of demand
    entries (:func:`demand_member`: a replica id, with ``:<source>`` for a source other than
    interfaces) scored by when they expire (ms, Redis time). ``stream``: the interfaces' frames
    and status messages, oldest first; ``streams``: one such stream per source, in the order of
    ``gateway.core.sources.SOURCES`` (the first is ``stream``). ``meta``: a hash with, per source
    (:func:`meta_field`), ``seq``, the last traffic seq published, and ``status``, the current
    status message's JSON (the stream may have trimmed it away).

    One hash tag for every key of the gateway (rather than one per router) keeps them in one
    slot: the stream reader reads every router's stream with one ``XREAD``, which a Redis
    Cluster refuses across slots.
    """

    lease: str
    demand: str
    stream: str
    meta: str
    streams: tuple[str, ...] = ()

    def stream_of(self, source: str) -> str:
        """The stream of ``source`` (ValueError for one that is not a source)."""
        return self.streams[SOURCES.index(source)]


def router_keys(prefix: str, router: str) -> RouterKeys:
    """The keys of ``router``: ``{prefix}:<router>:lease``, ``...:demand``, ``...:stream`` (its
    interfaces), ``...:queues:stream``, ``...:hotspot:stream`` and ``...:meta``. Router ids hold
    no ``:``, ``{`` or ``}`` (see the router ``id`` setting), so no two routers' keys meet."""
    base = f"{{{prefix}}}:{router}"
    streams = tuple(
        f"{base}:stream" if source == DEFAULT_SOURCE else f"{base}:{source}:stream"
        for source in SOURCES
    )
    return RouterKeys(f"{base}:lease", f"{base}:demand", streams[0], f"{base}:meta", streams)


def meta_field(name: str, source: str) -> str:
    """A router's meta hash field ``name`` (``seq``, ``status``) of ``source``: as it is for
    interfaces (what the hash held before sources existed), ``name:source`` for the others."""
    return name if source == DEFAULT_SOURCE else f"{name}:{source}"


def demand_member(replica: str, source: str) -> str:
    """The demand entry of ``replica`` for ``source``: the replica's id for interfaces (what a
    replica wrote before sources existed), ``<replica>:<source>`` for the others. Replica ids
    hold no ``:`` (:func:`replica_id`)."""
    return replica if source == DEFAULT_SOURCE else f"{replica}:{source}"


def member_source(member: str) -> str:
    """The source a demand entry (:func:`demand_member`) wants."""
    _, colon, source = member.rpartition(":")
    return source if colon else DEFAULT_SOURCE


class Demanded(int):
    """The answer to a holder's tick: how many demand entries the router has (its replicas'
    demand for its sources; -1 when the lease is lost), and which ``sources`` they want.

    An ``int`` with the sources beside it, so the count reads as before sources existed."""

    sources: frozenset[str]

    def __new__(cls, count: int, sources: frozenset[str] = frozenset()) -> Demanded:
        made = super().__new__(cls, count)
        made.sources = sources
        return made


def lease_ttl_ms(interval: float, timeout: float) -> int:
    """A router's lease lifetime in milliseconds: ``2 x interval + timeout``, rounded up.

    A holder renews it every tick; a poll that takes its whole deadline delays one renewal by at
    most ``timeout``, so a slow router never costs the lease, while a dead holder's lease is
    taken over within this plus one interval.
    """
    return math.ceil((2 * interval + timeout) * 1000)


def stream_maxlen(history: int) -> int:
    """The length a router's stream is trimmed to (approximately, never below it)."""
    return history + STATUS_SLACK


def takeover_seq(stream_seq: int | None, latest_seq: int | None, now_ms: int) -> int:
    """The first ``seq`` a replica publishes after taking a router's lease.

    The largest of: the last seq in the stream plus one (``stream_seq``), the last seq this
    replica's viewers saw plus one (``latest_seq``: it may have published frames of its own
    while Redis was unreachable), and ``now_ms`` (Redis time in milliseconds). Seq grows by one
    per poll and polls are at least a millisecond apart, so every seq ever published is at most
    about the time it was published in milliseconds: starting at the current time is above
    whatever any replica published before, whatever happened meanwhile (an outage, a restarted
    Redis that lost the stream), with no coordination an outage could break. A viewer sees seq
    jump forward at a takeover, after a status message, and never go backwards.
    """
    return max([now_ms, *(s + 1 for s in (stream_seq, latest_seq) if s is not None)])


def replica_id(hostname: str, pid: int, suffix: str) -> str:
    """A replica's id for logs and leases: ``<host>-<pid>-<suffix>`` (e.g. the pod's name, its
    process id and a few random characters, so a restarted process with the same pid differs).
    Characters other than letters, digits, ``_``, ``.`` and ``-`` in the host name become ``-``."""
    host = _UNSAFE.sub("-", hostname)[:63] or "gateway"
    return f"{host}-{pid}-{suffix}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry: a message as the holder encoded it, once, for every replica.

    ``data`` is the message's JSON (a ``traffic`` frame or a ``status``), sent to viewers as it
    is; ``published`` the holder's Unix time when it appended it (for the lag metric); ``seq``
    the traffic frame's seq, so a reader can skip a frame it already has without parsing it, or
    a status's position: the seq of the first frame of its source it comes before (None for a
    status of a version that did not say; see ``StatusMark``).
    """

    kind: EntryKind
    data: bytes
    published: float
    seq: int | None = None
    source: str = DEFAULT_SOURCE


class EntryError(ValueError):
    """A stream entry this version cannot read (the message names what was wrong)."""


def entry_args(entry: Entry) -> tuple[str, bytes, str, str]:
    """Four script arguments carrying ``entry`` (see ``gateway.cluster_scripts.TICK``): kind,
    data, published time, seq (empty for a status); :func:`entry_place` gives where it goes."""
    seq = "" if entry.seq is None else str(entry.seq)
    return entry.kind, entry.data, repr(entry.published), seq


def entry_id(raw: bytes | str) -> tuple[int, int]:
    """A stream entry id (``<ms>-<n>``) as two integers, which order as Redis orders ids.

    Raises EntryError when it is not one.
    """
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    ms, dash, n = text.partition("-")
    if not (dash and ms.isdigit() and n.isdigit()):
        raise EntryError(f"stream entry id {text!r} is not <ms>-<n>")
    return int(ms), int(n)


@dataclass(frozen=True, slots=True, order=True)
class StatusMark:
    """Where a status message stands among its source's messages, cluster-wide.

    A replica gets statuses from Redis by paths that keep no one order between them: the
    stream, read in order, and the ``meta`` snapshot of the current status, read when the
    stream is loaded again after a reconnect and with lease calls (it may be older than what
    the stream already gave, or come from a Redis that restarted from an older save). A replica
    shows a status only when its mark is above the mark of the last one it showed (see
    ``gateway.cluster_statuses``), so viewers never get an older status after a newer one,
    whichever path brought it.

    ``seq`` is the status's position among the frames: the seq of the first frame of its source
    the holder publishes after it. Seq never goes backwards across takeovers and outages (see
    :func:`takeover_seq`), so neither do positions (a new holder's are above every earlier
    one's), whatever Redis lost. ``entry`` orders statuses at the same position: their stream
    entry id as ``(ms, n)``.
    """

    seq: int
    entry: tuple[int, int]


@dataclass(frozen=True, slots=True)
class StoredStatus:
    """A status message as Redis holds it: its JSON and its mark (None when the replica that
    published it did not say: it is shown as it comes)."""

    data: bytes
    mark: StatusMark | None


def status_mark(seq: int | None, raw_id: bytes | str) -> StatusMark | None:
    """The mark of a status stream entry: its position and entry id (None without a position).

    Raises EntryError when the id is not one.
    """
    return None if seq is None else StatusMark(seq, entry_id(raw_id))


def status_at(mark: StatusMark) -> str:
    """A mark as the ``status_at`` meta field holds it: ``"<seq> <ms>-<n>"`` (the scripts write
    it from the status's seq and the id ``XADD`` gave it)."""
    ms, n = mark.entry
    return f"{mark.seq} {ms}-{n}"


def parse_status_at(value: bytes | None) -> StatusMark | None:
    """The mark in a ``status_at`` meta field (None when absent or not one: such a status is
    shown as it comes, as before marks existed)."""
    if not value:
        return None
    seq, _, raw_id = value.decode("ascii", "replace").partition(" ")
    if not seq.isdigit():
        return None
    try:
        return StatusMark(int(seq), entry_id(raw_id))
    except EntryError:
        return None


def supersedes(held: StoredStatus | None, stored: StoredStatus) -> bool:
    """Whether ``stored`` replaces ``held`` as the newest status Redis gave for a source: when
    there is none yet, when either has no mark (shown as it comes), or when its mark is above."""
    return held is None or stored.mark is None or held.mark is None or held.mark < stored.mark


def follows(shown: StatusMark | None, mark: StatusMark | None, *, strict: bool) -> bool:
    """Whether a status marked ``mark`` comes after the last one from Redis a topic showed,
    marked ``shown`` (or is that one, unless ``strict``). Either mark None: it does (a status
    without a mark is shown as it comes; none shown yet, any follows)."""
    if mark is None or shown is None:
        return True
    return shown < mark if strict else shown <= mark


def status_shown(
    data: bytes, router: str, source: str, served: Collection[str]
) -> dict[str, object]:
    """The status message a status from Redis (its JSON, ``data``) shows on the topic of
    ``router``'s ``source``. A message naming no source is the interfaces' (``DEFAULT_SOURCE``).

    Raises EntryError, saying why it is skipped, for one that is not a status of ``router``,
    one of a source not ``served``, or one of another source than ``source`` (the stream's).
    """
    try:
        status = orjson.loads(data)
    except orjson.JSONDecodeError:
        status = None
    if not isinstance(status, dict) or status.get("router") != router:
        raise EntryError("a status in Redis that is not one")
    named = status.get("source", DEFAULT_SOURCE)
    if not isinstance(named, str) or named not in served:
        raise EntryError("a status of a source it does not serve")
    if named != source:
        raise EntryError("a status in the stream of another source")
    return status


def entry_place(entry: Entry) -> tuple[str, str]:
    """The two script arguments saying where ``entry`` goes: its stream (the 1-based index of
    its source in ``SOURCES``, its position among the scripts' stream keys) and its meta field
    suffix (``""`` or ``":<source>"``, see :func:`meta_field`)."""
    return str(SOURCES.index(entry.source) + 1), meta_field("", entry.source)


def parse_entry(fields: Mapping[bytes, bytes]) -> Entry:
    """An entry from its stream fields (``type``, ``data``, ``t``, and ``seq`` for traffic).

    Raises EntryError naming the field that is missing or malformed.
    """
    kind = fields.get(b"type")
    data = fields.get(b"data")
    if kind not in (b"traffic", b"status"):
        raise EntryError(f"entry type {kind!r} is neither traffic nor status")
    if data is None:
        raise EntryError("entry without data")
    try:
        published = float(fields.get(b"t", b""))
    except ValueError:
        raise EntryError(f"entry time {fields.get(b't')!r} is not a number") from None
    if not math.isfinite(published):
        raise EntryError(f"entry time {published!r} is not finite")
    raw = fields.get(b"seq", b"")
    if kind == b"status":
        return Entry("status", data, published, int(raw) if raw.isdigit() else None)
    if not raw.isdigit():
        raise EntryError(f"traffic entry seq {raw!r} is not a non-negative integer")
    return Entry("traffic", data, published, int(raw))


class RedisUnavailable(Exception):
    """A Redis call failed or missed its deadline; the message says which call and why (never
    the URL's password). The caller carries on as if the call had not been made."""
