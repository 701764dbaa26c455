"""The emulator's HTTP control API over real HTTP, with real clients watching its effects."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from librouteros.exceptions import ConnectionClosed, TrapError
from librouteros.query import Key
from pytest_aiohttp import AiohttpClient

from gateway.emulator.control import create_control_app
from gateway.emulator.device import sized_config
from gateway.emulator.server import FAULT_TRAP, RouterEmulator
from tests.support.emulators import Clients, FakeClock, Routers, rows_of
from tests.support.timing import seconds

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=seconds(5))


class Control:
    """An HTTP client for one emulator's control app, served on a real loopback port."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self._client = client

    async def get(self, path: str) -> tuple[int, Any]:
        async with self._client.get(path) as response:
            return response.status, await response.json()

    async def post(
        self, path: str, body: object = None, *, data: str | None = None
    ) -> tuple[int, Any]:
        async with self._client.post(path, json=body, data=data) as response:
            return response.status, await response.json()


@pytest.fixture
async def control(router: RouterEmulator, aiohttp_client: AiohttpClient) -> Control:
    """The router's control API on a free port, and a client session for it."""
    return Control(await aiohttp_client(create_control_app(router), timeout=HTTP_TIMEOUT))


async def test_stats_count_connections_logins_and_commands(
    control: Control, clients: Clients, router: RouterEmulator
) -> None:
    """GET /stats counts connections, logins, failures and each command word."""
    api = await clients.async_connect(router)
    await rows_of(api("/interface/print"))
    await rows_of(api("/interface/print"))
    await rows_of(api("/system/identity/print"))
    with pytest.raises(TrapError):
        await clients.async_connect(router, password="wrong")
    status, stats = await control.get("/stats")
    assert status == 200
    assert stats == {
        "connections": 2,
        "active_sessions": 1,
        "logins": 1,
        "login_failures": 1,
        "commands": {"/login": 2, "/interface/print": 2, "/system/identity/print": 1},
        "fault": "none",
        "interfaces": 9,
        "queues": 0,
        "ppp_sessions": 0,
        "hotspot_users": 0,
    }
    assert await control.post("/reset-stats") == (200, {"ok": True})
    _, stats = await control.get("/stats")
    assert (stats["connections"], stats["logins"], stats["commands"]) == (0, 0, {})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"mode": "explode"}, "mode", id="mode"),
        pytest.param({"mode": "slow", "delay": -1}, "delay", id="delay"),
        pytest.param({"mode": "slow", "delay": "2"}, "delay", id="delay-type"),
        pytest.param({"mode": "hang", "for": "ten"}, "for", id="for"),
        pytest.param({"mode": "hang", "until": 3}, "until", id="unknown-field"),
    ],
)
async def test_bad_fault_body_names_the_field(
    control: Control, router: RouterEmulator, body: dict[str, object], field: str
) -> None:
    """POST /faults with a bad body answers 400 naming the field, and changes nothing."""
    status, reply = await control.post("/faults", body)
    assert status == 400
    assert re.search(rf"\b{field}\b", reply["error"])
    assert router.fault.mode == "none"


async def test_fault_body_that_is_not_json(control: Control, router: RouterEmulator) -> None:
    """POST /faults with a body that is not JSON answers 400 saying so."""
    status, reply = await control.post("/faults", data="mode=hang")
    assert (status, reply) == (400, {"error": "body: expected JSON"})
    assert router.fault.mode == "none"


async def test_fault_set_over_http_reaches_clients(
    control: Control, clients: Clients, router: RouterEmulator
) -> None:
    """A trap fault set over HTTP fails a client's next command; mode none clears faults."""
    api = await clients.async_connect(router)
    status, reply = await control.post("/faults", {"mode": "trap"})
    assert (status, reply) == (200, {"mode": "trap", "delay": 0.0, "for": None})
    assert (await control.get("/stats"))[1]["fault"] == "trap"
    with pytest.raises(TrapError, match=re.escape(FAULT_TRAP)):
        await rows_of(api("/system/identity/print"))
    assert await control.post("/faults", {"mode": "auth", "for": 30}) == (
        200,
        {"mode": "auth", "delay": 0.0, "for": 30.0},
    )
    with pytest.raises(TrapError):
        await clients.async_connect(router)
    await control.post("/faults", {"mode": "none"})
    assert await rows_of(api("/system/identity/print")) == [{"name": "MikroTik"}]


async def test_reboot_over_http(
    control: Control, clients: Clients, router: RouterEmulator, fake_clock: FakeClock
) -> None:
    """POST /reboot drops the sessions; counters and uptime start again from zero."""
    router.device.set_traffic("ether1", 8_000_000, 2_000_000)
    api = await clients.async_connect(router)
    fake_clock.advance(100)
    assert (await rows_of(api("/interface/print")))[0]["rx-byte"] == 100_000_000
    assert await control.post("/reboot") == (200, {"ok": True})
    with pytest.raises((ConnectionClosed, ConnectionResetError)):
        await rows_of(api("/interface/print"))
    fresh = await clients.async_connect(router)
    assert (await rows_of(fresh("/interface/print")))[0]["rx-byte"] == 0
    assert (await rows_of(fresh("/system/resource/print")))[0]["uptime"] == "0s"


async def test_reset_counters_over_http(
    control: Control, clients: Clients, router: RouterEmulator, fake_clock: FakeClock
) -> None:
    """POST /reset-counters zeroes every counter, and the session stays up."""
    router.device.set_traffic("ether1", 8_000_000, 2_000_000)
    api = await clients.async_connect(router)
    fake_clock.advance(100)
    assert (await rows_of(api("/interface/print")))[0]["tx-byte"] == 25_000_000
    assert await control.post("/reset-counters") == (200, {"ok": True})
    rows = await rows_of(api("/interface/print"))
    assert {(row["rx-byte"], row["tx-byte"]) for row in rows} == {(0, 0)}


async def test_stats_count_the_customer_menus(
    routers: Routers,
    clients: Clients,
    aiohttp_client: AiohttpClient,
    fake_clock: FakeClock,
) -> None:
    """GET /stats counts queue, PPP and hotspot prints like any command, and says how many
    queues, PPP sessions and hotspot users the router holds; POST /reset-counters zeroes the
    queues too."""
    config = sized_config(8, pppoe=2, queues=3, hotspot=1, pppoe_session=0, hotspot_session=0)
    router = await routers.start(config)
    control = Control(await aiohttp_client(create_control_app(router), timeout=HTTP_TIMEOUT))
    router.device.set_queue_traffic("cust0001", 800_000, 8_000_000)
    api = await clients.async_connect(router)
    fake_clock.advance(10)
    for command in ("/queue/simple/print", "/queue/simple/print", "/ppp/active/print"):
        await rows_of(api(command))
    await rows_of(api("/ip/hotspot/active/print"))
    _, stats = await control.get("/stats")
    assert stats["commands"] == {
        "/login": 1,
        "/queue/simple/print": 2,
        "/ppp/active/print": 1,
        "/ip/hotspot/active/print": 1,
    }
    assert (stats["queues"], stats["ppp_sessions"], stats["hotspot_users"]) == (6, 2, 1)
    cust = api.path("/queue/simple").select(Key("bytes")).where(Key("name") == "cust0001")
    assert await rows_of(cust) == [{"bytes": "1000000/10000000"}]
    assert await control.post("/reset-counters") == (200, {"ok": True})
    assert {row["bytes"] for row in await rows_of(api("/queue/simple/print"))} == {"0/0"}
