"""Rates on the wire: exact from known counter growth, and null for one tick after any reset.

Each router here runs on a ``PollClock`` shared with the gateway, so the router's counters and
the poller's sample times refer to the same instants and a 0.5% check holds on a busy machine.
Where a test picks out a frame by ``frame_after``, every poll succeeds, so a frame's ``seq``
(counted from the poller's ``seq_base``) is the ordinal of the ``/interface/print`` that
produced it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import pytest

from gateway.emulator.interface import RX_PACKET_SIZE, TX_PACKET_SIZE
from gateway.emulator.server import RouterEmulator
from tests.support.gateway import (
    Gateway,
    PollClock,
    emulator,
    gateway,
    gateway_settings,
    prints,
    receive,
    running,
    send,
    subscribe,
)
from tests.support.timing import eventually, seconds

INTERVAL: Final = 0.3
TOLERANCE: Final = 0.005
POLL: Final = {"interval": INTERVAL, "backoff_initial": 0.05, "backoff_max": 0.2}
RATES: Final = ("rx_bps", "tx_bps", "rx_pps", "tx_pps")

Frame = dict[str, Any]


@dataclass
class Exact:
    """A router on a shared poll clock, the gateway polling it, and one subscribed viewer."""

    emu: RouterEmulator
    clock: PollClock
    gw: Gateway
    ws: aiohttp.ClientWebSocketResponse
    # Status messages seen while waiting for traffic, in order, since the last traffic frame.
    statuses: list[Frame]

    async def frame(self) -> Frame:
        """The next traffic frame; status messages on the way are kept in ``statuses``."""
        self.statuses = []
        while True:
            message: Frame = await receive(self.ws, seconds(5))
            if message["type"] == "traffic":
                # Fault-free polls: the frame's seq is the print's ordinal (see the module doc).
                assert prints(self.emu) >= self.ordinal(message)
                return message
            if message["type"] == "status":
                self.statuses.append(message)

    async def frame_after(self, count: int) -> Frame:
        """The frame of the first print after the router had answered ``count`` prints."""
        while True:
            frame = await self.frame()
            if self.ordinal(frame) > count:
                assert self.ordinal(frame) == count + 1, "a tick went missing"
                return frame

    def seconds_of(self, frame: Frame) -> float:
        """The time the frame's rates were measured over (between its print and the previous)."""
        seq = self.ordinal(frame)
        return self.clock.instants[seq] - self.clock.instants[seq - 1]

    def ordinal(self, frame: Frame) -> int:
        """Which poll of this gateway produced the frame (1 for the first)."""
        [poller] = self.gw.pollers.values()
        ordinal: int = frame["seq"] - poller.seq_base
        return ordinal


@contextlib.asynccontextmanager
async def exact_router(linger: float = 2.0, **device: Any) -> AsyncIterator[Exact]:
    clock = PollClock()
    emu = emulator(clock=clock.router, **device)
    clock.emulator = emu
    poll = {**POLL, "linger": linger}
    async with (
        running(emu),
        gateway(gateway_settings({"core": emu}, poll), clock=clock.gateway) as gw,
    ):
        ws = await gw.viewer()
        await subscribe(ws, "core")
        yield Exact(emu, clock, gw, ws, [])
        await ws.close()


def interface(frame: Frame, name: str) -> Frame:
    matches = [i for i in frame["interfaces"] if i["name"] == name]
    assert len(matches) == 1, (name, frame["interfaces"])
    return dict(matches[0])


def assert_rates(frame: Frame, name: str, rx_bps: float, tx_bps: float) -> None:
    """The interface's four rates match traffic of ``rx_bps``/``tx_bps`` within 0.5%.

    The router counts whole packets, so a tick's packet count is off by up to one: the loads in
    these tests give well over a thousand packets a tick, where that is 0.1% at most.
    """
    got = interface(frame, name)
    want = {
        "rx_bps": rx_bps,
        "tx_bps": tx_bps,
        "rx_pps": rx_bps / 8 / RX_PACKET_SIZE,
        "tx_pps": tx_bps / 8 / TX_PACKET_SIZE,
    }
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=TOLERANCE), (key, frame["seq"], got)


def assert_null(frame: Frame, name: str) -> None:
    got = interface(frame, name)
    assert [got[key] for key in RATES] == [None] * 4, (frame["seq"], got)


async def test_steady_traffic_shows_exact_rates() -> None:
    """A link carrying a known load shows that load in bits and packets per second."""
    async with exact_router(interfaces=4) as r:
        r.emu.device.set_traffic("ether1", 800e6, 120e6)
        r.emu.device.set_traffic("sfp-sfpplus1", 2.4e9, 1.6e9)
        first = await r.frame()
        # The first sample has no baseline: every rate is unknown, not zero.
        for item in first["interfaces"]:
            assert [item[key] for key in RATES] == [None] * 4, item
        for _ in range(4):
            frame = await r.frame()
            assert_rates(frame, "ether1", 800e6, 120e6)
            assert_rates(frame, "sfp-sfpplus1", 2.4e9, 1.6e9)
            # The port without a cable carries nothing: zero, not null.
            assert_rates(frame, "ether2", 0.0, 0.0)


async def test_bytes_counted_between_polls_show_as_their_rate() -> None:
    """Bytes counted between two polls show as exactly that many bits over the poll's time."""
    async with exact_router(interfaces=4) as r:
        await r.frame()
        await r.frame()
        count = prints(r.emu)
        # 10,000 packets each way at the emulator's packet sizes.
        r.emu.device.add_traffic("ether2", 9_000_000, 4_200_000)
        frame = await r.frame_after(count)
        dt = r.seconds_of(frame)
        assert_rates(frame, "ether2", 9_000_000 * 8 / dt, 4_200_000 * 8 / dt)
        quiet = await r.frame()
        assert_rates(quiet, "ether2", 0.0, 0.0)


async def test_reset_counters_gives_null_for_one_tick() -> None:
    """After reset-counters a chart shows a gap for one tick, not a spike, then the real rate."""
    async with exact_router(interfaces=4) as r:
        r.emu.device.set_traffic("ether1", 400e6, 40e6)
        for _ in range(3):
            await r.frame()
        count = prints(r.emu)
        r.emu.reset_counters()
        assert_null(await r.frame_after(count), "ether1")
        assert_rates(await r.frame(), "ether1", 400e6, 40e6)
        assert_rates(await r.frame(), "ether1", 400e6, 40e6)


async def test_reboot_gives_down_up_then_null_for_one_tick() -> None:
    """A rebooted router shows down, then up with a one-tick gap, then its real rates."""
    async with exact_router(interfaces=4) as r:
        r.emu.device.set_traffic("ether1", 400e6, 40e6)
        for _ in range(3):
            await r.frame()
        assert_rates(await r.frame(), "ether1", 400e6, 40e6)
        await r.emu.reboot()
        after = await r.frame()
        states = [s["state"] for s in r.statuses]
        assert "down" in states, r.statuses
        assert states[-1] == "up", r.statuses
        assert_null(after, "ether1")
        assert_rates(await r.frame(), "ether1", 400e6, 40e6)
        assert r.emu.logins == 2


async def test_reboot_with_counters_past_the_old_ones_gives_null() -> None:
    """A router back from a reboot shows a gap, even when its new counters passed the old ones."""
    async with exact_router(interfaces=4) as r:
        r.emu.device.set_traffic("ether1", 400e6, 40e6)
        await r.frame()
        assert_rates(await r.frame(), "ether1", 400e6, 40e6)
        await r.emu.reboot()
        # Busy since boot: the fresh counters are already far past the pre-reboot ones.
        r.emu.device.add_traffic("ether1", 10**12, 10**11)
        after = await r.frame()
        assert "down" in [s["state"] for s in r.statuses]
        assert_null(after, "ether1")
        assert_rates(await r.frame(), "ether1", 400e6, 40e6)


async def test_viewer_back_after_idle_gets_null_then_exact_rates() -> None:
    """A chart reopened after the router idled starts with a gap, not an average of the pause."""
    async with exact_router(linger=0.2, interfaces=4) as r:
        r.emu.device.set_traffic("ether1", 400e6, 40e6)
        await r.frame()
        assert_rates(await r.frame(), "ether1", 400e6, 40e6)
        await send(r.ws, {"type": "unsubscribe", "router": "core"})
        poller = r.gw.pollers["core"]
        await eventually(lambda: poller.state == "idle", timeout=seconds(3), message="idle")
        # A burst while nobody watched: averaged into the first tick, it would draw a spike.
        r.emu.device.add_traffic("ether1", 5 * 10**9, 10**9)
        r.emu.device.set_traffic("ether1", 800e6, 80e6)
        count = prints(r.emu)
        await subscribe(r.ws, "core")
        assert_null(await r.frame_after(count), "ether1")
        assert_rates(await r.frame(), "ether1", 800e6, 80e6)


async def test_pppoe_redial_gives_null_for_the_new_interface_only() -> None:
    """A customer who re-dials shows a one-tick gap on their line only; others stay exact."""
    async with exact_router(interfaces=4, pppoe=3, pppoe_session=0.0, pppoe_redial=0.05) as r:
        device = r.emu.device
        for login in ("user0001", "user0002"):
            device.set_traffic(f"<pppoe-{login}>", 100e6, 40e6)
        await r.frame()
        before = await r.frame()
        assert_rates(before, "<pppoe-user0001>", 100e6, 40e6)
        old_id = interface(before, "<pppoe-user0001>")["id"]
        count = prints(r.emu)
        assert device.drop_pppoe("user0001")
        redialed = await r.frame_after(count)
        assert interface(redialed, "<pppoe-user0001>")["id"] != old_id
        assert_null(redialed, "<pppoe-user0001>")
        assert_rates(redialed, "<pppoe-user0002>", 100e6, 40e6)
        count = prints(r.emu)
        device.set_traffic("<pppoe-user0001>", 50e6, 20e6)
        frame = await r.frame_after(count)
        assert_rates(frame, "<pppoe-user0001>", 50e6, 20e6)
        assert_rates(frame, "<pppoe-user0002>", 100e6, 40e6)
