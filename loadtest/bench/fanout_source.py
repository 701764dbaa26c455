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

import orjson

from gateway.core.frames import traffic_frame
from gateway.core.model import Sample, parse_interface_row
from gateway.core.rates import compute_rates
from gateway.emulator.device import Device, sized_config


class FrameSource:
    """Numbered traffic frames for one router, as JSON bytes."""

    def __init__(self, router: str = "r1", interfaces: int = 8, interval: float = 1.0) -> None:
        self.router = router
        self.interval = interval
        self.seq = 0
        self._device = Device(sized_config(interfaces, 0))
        self._previous: Sample | None = None

    def next(self) -> bytes:
        """The next frame, stamped now."""
        device = self._device
        device.advance()
        rows = (parse_interface_row(device.interface_row(i)) for i in device.iter_interfaces())
        sample = Sample(time.monotonic(), tuple(r for r in rows if r is not None))
        rates = compute_rates(self._previous, sample)
        self._previous = sample
        self.seq += 1
        frame = traffic_frame(self.router, self.seq, time.time(), self.interval, False, rates)
        return orjson.dumps(frame)
