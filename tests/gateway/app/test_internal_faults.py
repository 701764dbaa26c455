"""Faults of our own below the long-lived loops: logged once, shown to viewers, never a silent stop.

The router here is the real emulator behind the real librouteros client; the fault is injected
between them (``FaultyApi`` wraps the live session), or in a viewer's sink for the heartbeat.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Literal

import aiohttp
import pytest

from gateway.config import RouterSettings
from gateway.routeros import Connector, ExactApi, connect_librouteros
from gateway.sink import Sink
from gateway.topic import Topic
from tests.support.gateway import (
    emulator,
    gateway,
    gateway_settings,
    next_traffic,
    receive,
    receive_until,
    running,
    send,
)
from tests.support.timing import eventually, seconds

POLL = {"interval": 0.2, "timeout": 1.0, "backoff_initial": 0.1, "backoff_max": 0.3}

Mode = Literal["none", "print-raises", "bad-rows", "logout-raises"]


class Faults:
    """The fault the wrapped sessions inject now, switched by the test; and how often it hit."""

    def __init__(self) -> None:
        self.mode: Mode = "none"
        self.hits = 0


class UnreadableRow(Mapping[str, str]):
    """A reply row whose fields cannot be looked up: stands in for a bug in reading rows."""

    def __init__(self, row: Mapping[str, str]) -> None:
        self._row = row

    def __getitem__(self, key: str) -> str:
        raise TypeError(f"cannot read {key}")

    def __iter__(self) -> Iterator[str]:
        return iter(self._row)

    def __len__(self) -> int:
        return len(self._row)


class FaultyProtocol:
    """The session's wire protocol, whose ``/quit`` at logout raises while the fault is on."""

    def __init__(self, protocol: Any, faults: Faults) -> None:
        self._protocol = protocol
        self._faults = faults

    @property
    def transport(self) -> Any:
        return self._protocol.transport

    async def writeSentence(self, cmd: str, *words: str) -> None:
        if self._faults.mode == "logout-raises":
            self._faults.hits += 1
            raise KeyError("quit")
        await self._protocol.writeSentence(cmd, *words)

    async def readSentence(self) -> Any:
        return await self._protocol.readSentence()


class FaultyApi(ExactApi):
    """A live session to the emulator (the gateway's own ``ExactApi``) with a fault injected
    under the poll loop."""

    def __init__(self, api: ExactApi, faults: Faults) -> None:
        super().__init__(api.protocol)
        self._faults = faults
        self.protocol = FaultyProtocol(api.protocol, faults)

    async def rawCmd(self, command: str, *words: str) -> AsyncIterator[Mapping[str, str]]:
        faults = self._faults
        if faults.mode == "print-raises":
            faults.hits += 1
            raise KeyError("rx-byte")
        async for row in super().rawCmd(command, *words):
            yield UnreadableRow(row) if faults.mode == "bad-rows" else row
        if faults.mode == "bad-rows":
            faults.hits += 1


def faulty(faults: Faults) -> Connector:
    """A connector that opens real sessions and wraps each in a ``FaultyApi``."""

    async def connect(router: RouterSettings, timeout: float) -> Any:
        api = await connect_librouteros(router, timeout)
        assert isinstance(api, ExactApi)
        return FaultyApi(api, faults)

    return connect


def tracebacks(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    """Log records of ``logger`` that carry a traceback."""
    return [r for r in caplog.records if r.name == logger and r.exc_info is not None]


async def down(ws: Any) -> Any:
    """The next ``down`` status (traffic already in flight and other states are skipped)."""
    status = await receive_until(ws, "status", timeout=seconds(5))
    while status["state"] != "down":
        status = await receive_until(ws, "status", timeout=seconds(5))
    return status


@pytest.mark.parametrize(
    ("mode", "logger", "error"),
    [
        # A row whose fields cannot be looked up: caught by the poll loop itself.
        ("bad-rows", "gateway.poller", "internal error: TypeError"),
        # The session raises what the library never should: caught at the client boundary.
        ("print-raises", "gateway.routeros", "unexpected KeyError during /interface/print"),
    ],
)
async def test_fault_below_the_poll_loop_is_reported_and_polling_recovers(
    caplog: pytest.LogCaptureFixture, mode: Mode, logger: str, error: str
) -> None:
    """A bug under the poll loop: viewers see the router down, the log one traceback, and
    frames flow again once the fault is gone."""
    caplog.set_level(logging.DEBUG, logger="gateway")
    faults = Faults()
    emu = emulator()
    async with (
        running(emu),
        gateway(gateway_settings({"core": emu}, POLL), connect=faulty(faults)) as gw,
    ):
        ws = await gw.viewer()
        await subscribe_and_wait(ws)
        faults.mode = mode
        status = await down(ws)
        assert status["error"].endswith(error)
        code, body = await gw.get_json("/api/routers")
        assert code == 200
        [router] = body["routers"]
        assert (router["state"], router["last_error"]) == ("down", status["error"])
        # It keeps trying (backing off), and the log keeps one traceback for the lot.
        await eventually(lambda: faults.hits >= 4, timeout=seconds(5), message="4 failed polls")
        assert len(tracebacks(caplog, logger)) == 1
        faults.mode = "none"
        frame = await next_traffic(ws, timeout=seconds(5))
        assert frame["stale"] is False
        assert gw.pollers["core"].state == "up"
        await ws.close()


async def subscribe_and_wait(ws: Any) -> None:
    """Subscribe to ``core`` and wait for its first live frame."""
    await ws.send_json({"type": "subscribe", "router": "core"})
    await receive_until(ws, "traffic", timeout=seconds(5))


async def test_fault_outside_a_poll_does_not_end_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug while logging out of an idle router is logged; the next viewer gets frames."""
    caplog.set_level(logging.DEBUG, logger="gateway")
    faults = Faults()
    emu = emulator()
    poll = {**POLL, "linger": 0.1}
    async with (
        running(emu),
        gateway(
            gateway_settings({"core": emu}, poll), connect=faulty(faults), idle_logout=0.1
        ) as gw,
    ):
        ws = await gw.viewer()
        await subscribe_and_wait(ws)
        faults.mode = "logout-raises"
        await ws.close()
        await eventually(lambda: faults.hits >= 1, timeout=seconds(5), message="a logout")
        [record] = tracebacks(caplog, "gateway.poller")
        assert "poll loop: unexpected KeyError" in record.getMessage()
        faults.mode = "none"
        ws = await gw.viewer()
        await subscribe_and_wait(ws)
        await ws.close()


class RaisingTransport:
    """A viewer's transport whose write raises while ``fault`` is set; counts what got through."""

    def __init__(self) -> None:
        self.fault = True
        self.attempts = 0
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.attempts += 1
        if self.fault:
            raise RuntimeError("transport broke")
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


async def test_heartbeat_survives_a_viewer_whose_write_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A viewer whose writes raise costs the others no heartbeat; one traceback; beats go on."""
    caplog.set_level(logging.DEBUG, logger="gateway")
    emu = emulator()
    beat = 0.2
    async with running(emu), gateway(gateway_settings({"core": emu}, heartbeat=beat)) as gw:
        broken = RaisingTransport()
        sink = Sink(broken)
        gw.hub.connect(sink)  # first in line, before every real viewer
        try:
            ws = await gw.viewer()
            for _ in range(3):
                message = await receive(ws, timeout=seconds(beat * 5))
                assert message["type"] == "heartbeat"
            assert broken.attempts >= 3
            assert len(tracebacks(caplog, "gateway.app")) == 1
            broken.fault = False
            await eventually(lambda: bool(broken.writes), timeout=seconds(beat * 5))
            assert b'"type":"heartbeat"' in broken.writes[0]
            await ws.close()
        finally:
            gw.hub.disconnect(sink)


async def test_a_bug_met_by_one_viewers_message_closes_only_that_viewer_with_1011(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message that runs into a bug of ours closes its connection with 1011 (the client
    reconnects) and logs one traceback per kind; the other viewers keep getting frames."""
    caplog.set_level(logging.DEBUG, logger="gateway.ws")
    subscribe_for_real = Topic.subscribe

    def subscribe(self: Topic, sink: Sink, *args: Any, **kw: Any) -> bool:
        if kw.get("frames") == 13:  # the test's trigger: stands in for a bug of ours
            raise KeyError("a bug")
        return subscribe_for_real(self, sink, *args, **kw)

    monkeypatch.setattr(Topic, "subscribe", subscribe)
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"core": emu}, poll=POLL)) as gw:
        calm = await gw.viewer()
        await send(calm, {"type": "subscribe", "router": "core", "history": 0})
        await receive_until(calm, "traffic", seconds(5))
        for _ in range(2):
            unlucky = await gw.viewer()
            await send(unlucky, {"type": "subscribe", "router": "core", "history": 13})
            msg = await unlucky.receive(timeout=seconds(5))
            assert msg.type is aiohttp.WSMsgType.CLOSE, msg
            assert (unlucky.close_code, msg.extra) == (1011, "internal error")
        await receive_until(calm, "traffic", seconds(5))
        await eventually(lambda: len(gw.viewers()) == 1, timeout=seconds(5))
        await calm.close()
    assert len(tracebacks(caplog, "gateway.ws")) == 1
