"""The ``traffic`` frames of the websocket protocol and the REST snapshot, as plain dicts.

One builder per source (interfaces, queues, hotspot users), the rows of a frame
(:func:`rows_of`) and when one is stale (:func:`is_stale`). Building and encoding are separate:
these functions return dicts whose key order is the order on the wire, and the hub encodes each
one once with orjson and fans the same bytes out to every subscriber. :func:`filter_traffic`
defines what a filtered viewer gets; the hub gets the same bytes without matching every
interface each tick, by splicing rows encoded once (``gateway.core.rows``). The other messages
(``hello``, ``status``, ``error``) are built in ``gateway.core.messages``; name filters are
``gateway.core.filters``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from gateway.core.filters import InterfaceFilter
from gateway.core.model import InterfaceRate, RouterState
from gateway.core.rates import Rates
from gateway.core.sessions import SessionView
from gateway.core.sources import DEFAULT_SOURCE, HotspotSample, QueueSample, Reading, Source

__all__ = [
    "PROTOCOL_VERSION",
    "filter_traffic",
    "hotspot_frame",
    "is_stale",
    "queue_frame",
    "rows_of",
    "traffic_frame",
]

PROTOCOL_VERSION: Final = 1
"""The ``v`` of ``hello`` and ``traffic`` frames."""


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


def is_stale(
    state: RouterState, frame_ts: float, now: float, interval: float, timeout: float
) -> bool:
    """Whether a traffic frame made at ``frame_ts`` is stale at ``now`` (both Unix seconds).

    Stale when the router is not ``up``, or when the frame is older than ``2 * interval +
    timeout``: one missed poll is jitter, two missed polls plus a full command deadline is not.
    """
    return state != "up" or now - frame_ts > 2 * interval + timeout


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
