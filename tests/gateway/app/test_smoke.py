"""The gateway in front of an emulated router: frames flow to a websocket viewer."""

from __future__ import annotations

from tests.support.gateway import (
    emulator,
    gateway,
    gateway_settings,
    receive_until,
    running,
    subscribe,
)


async def test_viewer_gets_status_history_then_live_frames() -> None:
    """A subscriber sees the router's status, its history, then live frames with rates."""
    emu = emulator()
    async with running(emu), gateway(gateway_settings({"core": emu})) as gw:
        ws = await gw.viewer()
        status, history = await subscribe(ws, "core")
        assert status["router"] == "core"
        assert history["frames"] == []
        first = await receive_until(ws, "traffic")
        second = await receive_until(ws, "traffic")
        assert second["seq"] == first["seq"] + 1
        ether1 = next(i for i in second["interfaces"] if i["name"] == "ether1")
        assert ether1["rx_bps"] is not None
        assert ether1["rx_bps"] > 0
        await ws.close()
