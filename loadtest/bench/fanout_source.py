"""The traffic frames the fan-out baselines send: the gateway's own frames, byte for byte in form.

The baselines do not poll a router over the network; once per interval they run the gateway's
own pipeline on the emulator's device model in-process: the device advances its counters, its
rows are parsed by the gateway's row parser, rates come from the gateway's ``compute_rates``, the
frame from ``traffic_frame``, the JSON from orjson, with ``ts`` taken at that moment ("poll
completion"). The frames therefore have the gateway's format, interfaces and size. The network
round trip of a real poll (one librouteros request per interval) is a cost only the gateway
pays, which makes the comparison conservative for it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson

from gateway.core.filters import InterfaceFilter
from gateway.core.frames import filter_traffic, traffic_frame
from gateway.core.model import InterfaceRate, Sample, parse_interface_row
from gateway.core.rates import compute_rates
from gateway.core.sessions import SessionBook, SessionView
from gateway.core.sources import parse_session_row
from gateway.emulator.device import Device, sized_config


class FrameSource:
    """Numbered traffic frames for one router, as JSON bytes.

    ``pppoe``: customers (``<pppoe-user0001>``...) besides the ``interfaces`` ports. ``only``:
    name globs; each frame keeps only those interfaces (a customer's own frame, say). ``fixed``:
    poll the device model twice at start and keep those rates, so a tick costs only the frame's
    encoding (orjson, C speed): a floor that pays nothing per interface per tick.
    """

    def __init__(
        self,
        router: str = "r1",
        interfaces: int = 8,
        interval: float = 1.0,
        *,
        pppoe: int = 0,
        only: list[str] | None = None,
        fixed: bool = False,
    ) -> None:
        self.router = router
        self.interval = interval
        self.seq = 0
        # With ``fixed``, the device's clock steps one interval per poll (the rates, and so the
        # frame's size, are those of a router polled at that interval).
        self._fixed = fixed
        self._steps = 0.0
        clock = (lambda: 1000.0 + self._steps) if fixed else time.monotonic
        self._device = Device(sized_config(interfaces, pppoe), clock=clock)
        self._previous: Sample | None = None
        self._filter = None if only is None else InterfaceFilter.of(only)
        # With ``fixed``: the frame's rows, built (and filtered) once.
        self._rows: object = None
        self._cut_rows: list[bytes] | None = None
        if fixed:
            self._poll()
            rates = self._poll()
            frame = traffic_frame(router, 0, 0.0, interval, False, rates, self._sessions())
            self._rows = self._cut(frame)["interfaces"]

    def _poll(self) -> Sequence[InterfaceRate]:
        device = self._device
        self._steps += self.interval
        device.advance()
        rows = (parse_interface_row(device.interface_row(i)) for i in device.iter_interfaces())
        at = 1000.0 + self._steps if self._fixed else time.monotonic()
        sample = Sample(at, tuple(r for r in rows if r is not None))
        rates = compute_rates(self._previous, sample)
        self._previous = sample
        return rates

    def _cut(self, frame: dict[str, object]) -> dict[str, object]:
        return frame if self._filter is None else filter_traffic(frame, self._filter)

    def next_frame(self) -> dict[str, object]:
        """The next frame as a dict, stamped now."""
        self.seq += 1
        if self._rows is not None:
            frame = traffic_frame(self.router, self.seq, time.time(), self.interval, False, ())
            frame["interfaces"] = self._rows
            return frame
        rates = self._poll()
        frame = traffic_frame(
            self.router, self.seq, time.time(), self.interval, False, rates, self._sessions()
        )
        return self._cut(frame)

    def _sessions(self) -> SessionView | None:
        """The device's PPP sessions, joined to their interfaces as the poller joins them."""
        device = self._device
        active = device.ppp_active
        if not active:
            return None
        book = SessionBook()
        rows = (parse_session_row(device.ppp_active_row(s)) for s in active.values())
        book.update([s for s in rows if s is not None], time.monotonic(), time.time())
        return book.view()

    def next(self) -> bytes:
        """The next frame, stamped now."""
        return orjson.dumps(self.next_frame())

    def next_per_customer(self) -> list[bytes]:
        """The next frame cut per PPPoE customer: one frame per ``<pppoe-...>`` interface
        holding that interface alone, as a viewer of that customer gets it, stamped now.

        Needs ``fixed`` rows (encoded once); a tick costs one encoding of the frame's fields
        and a concatenation per customer."""
        rows = self._rows
        if not isinstance(rows, list):
            raise RuntimeError("next_per_customer needs fixed rows")
        if self._cut_rows is None:
            self._cut_rows = [
                orjson.dumps(row) for row in rows if str(row.get("name", "")).startswith("<pppoe-")
            ]
        self.seq += 1
        fields = traffic_frame(self.router, self.seq, time.time(), self.interval, False, ())
        head = orjson.dumps(fields)[: -len(b"[]}")] + b"["
        return [b"".join((head, row, b"]}")) for row in self._cut_rows]
