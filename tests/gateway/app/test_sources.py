"""Sources over the wire: simple queues and hotspot users beside interfaces, with PPP sessions
joined in; what each costs the router, exact rates and plans, resets, scopes, history and resume,
and a router that lacks a source.

The routers are emulated (``gateway.emulator``) and polled by the real gateway over loopback;
the router's requests are counted on the emulator (``RouterEmulator.commands``). Where rates are
checked exactly, the router runs on a ``PollClock`` of the source's command, so the router's
counters and the poller's sample times refer to the same instants.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import jwt
import pytest

from gateway.config import Settings, settings_from_dict
from gateway.contract import StreamCheck
from gateway.emulator.interface import RX_PACKET_SIZE, TX_PACKET_SIZE
from gateway.emulator.server import RouterEmulator
from tests.support.gateway import (
    PASSWORD,
    Gateway,
    PollClock,
    emulator,
    gateway,
    gateway_settings,
    holds,
    receive,
    running,
    send,
    subscribe,
)
from tests.support.timing import eventually, seconds
from tests.support.tokens import SECRET

INTERVAL: Final = 0.3
POLL: Final = {
    "interval": INTERVAL,
    "linger": 0.5,
    "sessions_interval": 3.0,
    "backoff_initial": 0.05,
    "backoff_max": 0.2,
}
QUEUES: Final = "/queue/simple/print"
HOTSPOT: Final = "/ip/hotspot/active/print"
INTERFACES: Final = "/interface/print"
SESSIONS: Final = "/ppp/active/print"
TOLERANCE: Final = 0.005

Message = dict[str, Any]


def isp(**kw: Any) -> RouterEmulator:
    """An access router: 8 interfaces, 4 static plan queues, 3 PPPoE customers (each with its
    dynamic queue) and 2 hotspot users, nobody dropping unless told."""
    for key, value in {"queues": 4, "hotspot": 2, "pppoe_session": 0, "hotspot_session": 0}.items():
        kw.setdefault(key, value)
    return emulator(8, pppoe=3, **kw)


def rows(frame: Message) -> dict[str, Message]:
    """The rows of a traffic frame by name (by login for hotspot users)."""
    return {row["name"]: row for row in frame[frame["source"]]}


@dataclass
class Viewer:
    """One websocket and the contract checker that judges everything it receives."""

    ws: aiohttp.ClientWebSocketResponse
    check: StreamCheck

    async def subscribe(self, router: str, **fields: Any) -> tuple[Message, Message]:
        return await subscribe(self.ws, router, check=self.check, **fields)

    async def frame(self, source: str, timeout: float | None = None) -> Message:
        """The next traffic frame of ``source``, other messages held to the contract on the
        way."""
        deadline = time.monotonic() + (timeout if timeout is not None else seconds(5))
        while True:
            message: Message = await receive(self.ws, max(deadline - time.monotonic(), 0.001))
            holds(self.check.receive(message, time.monotonic()))
            if message["type"] == "traffic" and message["source"] == source:
                return message

    async def frame_where(
        self, source: str, test: Callable[[Message], bool], timeout: float | None = None
    ) -> Message:
        """The first traffic frame of ``source`` that passes ``test``."""
        deadline = time.monotonic() + (timeout if timeout is not None else seconds(10))
        while True:
            frame = await self.frame(source, max(deadline - time.monotonic(), 0.001))
            if test(frame):
                return frame


async def viewer(gw: Gateway, check: StreamCheck | None = None, **kw: Any) -> Viewer:
    """A new connection, its hello held to the contract (``check`` goes on from an earlier
    connection of the same client: a resume)."""
    check = check or StreamCheck()
    ws = await gw.http.ws_connect(gw.url("/ws"), timeout=aiohttp.ClientWSTimeout(5), **kw)
    check.connect(time.monotonic())
    holds(check.receive(await receive(ws), time.monotonic()))
    return Viewer(ws, check)


@contextlib.asynccontextmanager
async def isp_gateway(
    emu: RouterEmulator, clock: Callable[[], float] = time.monotonic, **poll: Any
) -> AsyncIterator[Gateway]:
    async with (
        running(emu),
        gateway(gateway_settings({"isp": emu}, {**POLL, **poll}), clock=clock) as gw,
    ):
        yield gw


# -- what a source costs the router ------------------------------------------------------------


async def test_a_source_nobody_watches_costs_the_router_nothing() -> None:
    """Viewers of interfaces only: no queue or hotspot request, ever. A queues viewer adds one
    queue request per tick (never a second in flight), and when it leaves they stop again."""
    emu = isp()
    async with isp_gateway(emu) as gw:
        first = await viewer(gw)
        await first.subscribe("isp")
        for _ in range(6):
            await first.frame("interfaces")
        assert emu.commands[QUEUES] == 0
        assert emu.commands[HOTSPOT] == 0
        # PPP sessions are read for the interfaces' joins: once, not every tick.
        assert emu.commands[SESSIONS] == 1

        second = await viewer(gw)
        await second.subscribe("isp", source="queues")
        await second.frame("queues")
        before = (emu.commands[INTERFACES], emu.commands[QUEUES])
        for _ in range(8):
            await second.frame("queues")
        ticks = emu.commands[INTERFACES] - before[0]
        assert abs((emu.commands[QUEUES] - before[1]) - ticks) <= 1
        assert 7 <= ticks <= 10
        assert emu.commands[HOTSPOT] == 0

        await send(second.ws, {"type": "unsubscribe", "router": "isp", "source": "queues"})
        poller = gw.pollers["isp"]
        await eventually(
            lambda: poller.source_status("queues")[0] == "idle",
            timeout=seconds(5),
            message="queues idle after the linger",
        )
        stopped = emu.commands[QUEUES]
        for _ in range(4):
            await first.frame("interfaces")
        assert emu.commands[QUEUES] == stopped
        assert (emu.peak_sessions, emu.logins) == (1, 1)  # one API session for every source


async def test_the_queues_and_hotspot_frames_of_one_router() -> None:
    """A queues and a hotspot subscription get frames naming their source, their rows under it,
    each with its own status and seq."""
    emu = isp()
    async with isp_gateway(emu) as gw:
        v = await viewer(gw)
        status, history = await v.subscribe("isp", source="queues")
        assert (status["source"], history["source"]) == ("queues", "queues")
        queues = await v.frame("queues")
        assert list(queues)[:9] == [
            *("type", "v", "router", "source", "seq", "ts", "interval", "stale", "queues")
        ]
        names = list(rows(queues))
        assert names == [
            *("cust0001", "cust0002", "cust0003", "cust0004"),
            *("<pppoe-user0001>", "<pppoe-user0002>", "<pppoe-user0003>"),
            *("<hotspot-guest0001>", "<hotspot-guest0002>"),
        ]
        first = rows(queues)["cust0001"]
        queue = emu.device.find_queue("cust0001")
        assert first["id"] == queue.id
        assert first["target"] == queue.target
        assert first["comment"] == queue.comment
        assert (first["dynamic"], first["disabled"]) == (False, False)
        assert (first["max_up_bps"], first["max_down_bps"]) == queue.max_limit
        assert "parent" not in first
        status, _ = await v.subscribe("isp", source="hotspot")
        assert status["source"] == "hotspot"
        hotspot = await v.frame("hotspot")
        users = rows(hotspot)
        assert list(users) == ["guest0001", "guest0002"]
        session = next(s for s in emu.device.hotspot_active.values() if s.user == "guest0001")
        guest = users["guest0001"]
        assert (guest["id"], guest["server"], guest["address"], guest["mac"]) == (
            session.id,
            "hotspot1",
            session.address,
            session.mac,
        )
        assert isinstance(guest["uptime"], int)
        later = await v.frame("queues")
        assert later["seq"] == queues["seq"] + 1 or later["seq"] > queues["seq"]
        assert emu.commands[HOTSPOT] >= 1


# -- exact rates and plans ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def exact(
    command: str, **device: Any
) -> AsyncIterator[tuple[RouterEmulator, PollClock, Gateway]]:
    clock = PollClock(command)
    emu = isp(clock=clock.router, **device)
    clock.emulator = emu
    async with isp_gateway(emu, clock=clock.gateway) as gw:
        yield emu, clock, gw


def assert_rates(row: Message, up: float, down: float) -> None:
    """The row's four rates match a steady ``up``/``down`` (bits/s) within 0.5%.

    The router counts whole packets, so a tick's packet count is off by up to one: at these
    loads a few hundred packets a tick, so packet rates get one packet per tick of slack."""
    want = {
        "up_bps": up,
        "down_bps": down,
        "up_pps": up / 8 / RX_PACKET_SIZE,
        "down_pps": down / 8 / TX_PACKET_SIZE,
    }
    for key, value in want.items():
        slack = 1.05 / INTERVAL if key.endswith("pps") else 0.0
        assert row[key] == pytest.approx(value, rel=TOLERANCE, abs=slack), (key, row)


async def test_queue_rates_and_utilisation_are_exact() -> None:
    """A customer moving a known load through its queue shows that load each way, in bits and
    packets per second, and the share of its plan it uses."""
    async with exact(QUEUES) as (emu, _, gw):
        device = emu.device
        plan_up, plan_down = device.find_queue("cust0001").max_limit
        up, down = plan_up * 0.42, plan_down * 0.9
        device.set_queue_traffic("cust0001", up, down)
        device.set_queue_traffic("<pppoe-user0002>", 3e6, 12e6)
        v = await viewer(gw)
        await v.subscribe("isp", source="queues")
        first = await v.frame("queues")
        for row in first["queues"]:
            assert [row[k] for k in ("up_bps", "down_bps", "util_up", "util_down")] == [None] * 4
        for _ in range(3):
            frame = await v.frame("queues")
            customer = rows(frame)["cust0001"]
            assert_rates(customer, up, down)
            assert customer["util_up"] == pytest.approx(42.0, abs=0.3)
            assert customer["util_down"] == pytest.approx(90.0, abs=0.5)
            assert_rates(rows(frame)["<pppoe-user0002>"], 3e6, 12e6)


async def test_an_unlimited_plan_has_no_utilisation() -> None:
    """A queue with max-limit 0/0 (every tenth customer's) has no plan and no utilisation, but
    its rates all the same."""
    async with exact(QUEUES, queues=10) as (emu, _, gw):
        emu.device.set_queue_traffic("cust0010", 1e6, 4e6)
        v = await viewer(gw)
        await v.subscribe("isp", source="queues", names=[{"exact": "cust0010"}])
        await v.frame("queues")
        frame = await v.frame("queues")
        [row] = frame["queues"]
        assert (row["max_up_bps"], row["max_down_bps"]) == (None, None)
        assert (row["util_up"], row["util_down"]) == (None, None)
        assert_rates(row, 1e6, 4e6)


async def test_hotspot_rates_are_exact_and_upload_is_what_the_user_sent() -> None:
    """A hotspot user's rates are its counters' (bytes-in is its upload), exactly."""
    async with exact(HOTSPOT) as (emu, _, gw):
        emu.device.set_hotspot_traffic("guest0002", 2e6, 9e6)
        v = await viewer(gw)
        await v.subscribe("isp", source="hotspot")
        await v.frame("hotspot")
        for _ in range(2):
            frame = await v.frame("hotspot")
            assert_rates(rows(frame)["guest0002"], 2e6, 9e6)


# -- resets ------------------------------------------------------------------------------------


async def test_a_redial_resets_the_customers_queue_and_rejoins_its_session() -> None:
    """A PPPoE customer who re-dials gets a new queue (new id): no rates for that tick, then
    rates again; its session comes back, new, once the gateway has read it."""
    async with exact(QUEUES, pppoe_redial=0.5) as (emu, _, gw):
        device = emu.device
        device.set_queue_traffic("<pppoe-user0001>", 1e6, 5e6)
        v = await viewer(gw)
        await v.subscribe("isp", source="queues", names=["<pppoe-*>"])
        before = await v.frame_where("queues", lambda f: "session" in rows(f)["<pppoe-user0001>"])
        old = rows(before)["<pppoe-user0001>"]
        assert old["session"]["user"] == "user0001"
        assert device.drop_pppoe("user0001")
        back = await v.frame_where(
            "queues",
            lambda f: (
                "<pppoe-user0001>" in rows(f) and rows(f)["<pppoe-user0001>"]["id"] != old["id"]
            ),
        )
        new = rows(back)["<pppoe-user0001>"]
        assert [new[k] for k in ("up_bps", "down_bps", "up_pps", "down_pps")] == [None] * 4
        assert "session" not in new  # a new dial: its session is not read yet
        device.set_queue_traffic("<pppoe-user0001>", 1e6, 5e6)
        rejoined = await v.frame_where(
            "queues", lambda f: "session" in rows(f)["<pppoe-user0001>"], timeout=seconds(10)
        )
        row = rows(rejoined)["<pppoe-user0001>"]
        assert row["id"] == new["id"]
        assert row["session"]["since"] > old["session"]["since"]
        ppp = next(p for p in device.ppp_active.values() if p.name == "user0001")
        assert row["session"]["address"] == ppp.address
        after = await v.frame("queues")
        assert_rates(rows(after)["<pppoe-user0001>"], 1e6, 5e6)


async def test_a_hotspot_relogin_is_a_reset() -> None:
    """A hotspot user who logs out and in again (a new id, uptime from zero) has no rates for
    that tick, then its new session's."""
    async with exact(HOTSPOT, hotspot_relogin=0.5) as (emu, _, gw):
        device = emu.device
        v = await viewer(gw)
        await v.subscribe("isp", source="hotspot")
        before = rows(await v.frame("hotspot"))["guest0001"]
        assert device.logout_hotspot("guest0001")
        back = await v.frame_where(
            "hotspot",
            lambda f: "guest0001" in rows(f) and rows(f)["guest0001"]["id"] != before["id"],
        )
        row = rows(back)["guest0001"]
        assert [row[k] for k in ("up_bps", "down_bps", "up_pps", "down_pps")] == [None] * 4
        device.set_hotspot_traffic("guest0001", 1e6, 2e6)
        await v.frame("hotspot")
        assert_rates(rows(await v.frame("hotspot"))["guest0001"], 1e6, 2e6)


# -- joins -------------------------------------------------------------------------------------


async def test_ppp_sessions_join_the_customers_interface_and_queue() -> None:
    """A PPPoE customer's interface and queue both carry its session: login, MAC, address and
    when the session began; interfaces of others carry none, and comments come with their
    interfaces."""
    emu = isp()
    async with isp_gateway(emu) as gw:
        v = await viewer(gw)
        await v.subscribe("isp")
        await v.subscribe("isp", source="queues")
        interfaces = rows(await v.frame("interfaces"))

        def joined(frame: Message) -> bool:
            return all("session" in r for r in frame["queues"] if r["name"].startswith("<pppoe-"))

        # Queues watched after the sessions were read: joined at the next read, soon after.
        queues = rows(await v.frame_where("queues", joined))
        for ppp in emu.device.ppp_active.values():
            name = f"<pppoe-{ppp.name}>"
            session = interfaces[name]["session"]
            assert {k: session[k] for k in ("user", "service", "caller_id", "address")} == {
                "user": ppp.name,
                "service": "pppoe",
                "caller_id": ppp.caller_id,
                "address": ppp.address,
            }
            assert isinstance(session["since"], int)
            assert session["since"] <= time.time()
            assert queues[name]["session"]["user"] == ppp.name
        assert "session" not in interfaces["ether1"]
        assert "session" not in queues["cust0001"]
        assert interfaces["sfp-sfpplus1"]["comment"] == "uplink"
        assert "comment" not in interfaces["ether1"]


# -- scopes ------------------------------------------------------------------------------------


def jwt_settings(emu: RouterEmulator) -> Settings:
    return gateway_settings({"isp": emu}, POLL, auth={})


def token(**claims: Any) -> str:
    body = {"sub": "customer-1", "exp": int(time.time() + 300), "routers": ["isp"], **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


CUSTOMER: Final = {
    "interfaces": {"isp": [{"exact": "<pppoe-user0002>"}]},
    "queues": {"isp": [{"exact": "<pppoe-user0002>"}, {"exact": "cust0003"}]},
    "hotspot": {"isp": [{"exact": "guest0001"}]},
}


async def test_one_token_scopes_a_customer_in_every_source() -> None:
    """A customer's token shows its own interface, queues and hotspot user and nothing else,
    over the websocket and over REST; a subscription's names narrow it further."""
    emu = isp()
    async with running(emu), gateway(jwt_settings(emu)) as gw:
        customer = token(**CUSTOMER)
        v = await viewer(gw, params={"token": customer})
        await v.subscribe("isp")
        await v.subscribe("isp", source="queues")
        await v.subscribe("isp", source="hotspot")
        assert list(rows(await v.frame("interfaces"))) == ["<pppoe-user0002>"]
        assert list(rows(await v.frame("queues"))) == ["cust0003", "<pppoe-user0002>"]
        assert list(rows(await v.frame("hotspot"))) == ["guest0001"]
        await v.subscribe("isp", source="queues", names=["cust*"])
        assert list(rows(await v.frame("queues"))) == ["cust0003"]
        headers = {"Authorization": f"Bearer {customer}"}
        for path, names in (
            ("traffic", ["<pppoe-user0002>"]),
            ("queues", ["cust0003", "<pppoe-user0002>"]),
            ("hotspot", ["guest0001"]),
        ):
            async with gw.http.get(gw.url(f"/api/routers/isp/{path}"), headers=headers) as r:
                assert r.status == 200, path
                body = await r.json()
            assert list(rows(body)) == names, path
            assert body["state"] == "up"


async def test_a_token_for_interfaces_alone_shows_no_queues_or_users() -> None:
    """A token written before sources existed, scoped to one interface, shows no other
    customer's queue or hotspot user; a token that scopes nothing shows them all."""
    emu = isp()
    async with running(emu), gateway(jwt_settings(emu)) as gw:
        narrow = token(interfaces={"isp": [{"exact": "<pppoe-user0002>"}]})
        v = await viewer(gw, params={"token": narrow})
        await v.subscribe("isp", source="queues")
        await v.subscribe("isp", source="hotspot")
        assert (await v.frame("queues"))["queues"] == []
        assert (await v.frame("hotspot"))["hotspot"] == []
        headers = {"Authorization": f"Bearer {narrow}"}
        async with gw.http.get(gw.url("/api/routers/isp/queues"), headers=headers) as r:
            assert (await r.json())["queues"] == []
        whole = await viewer(gw, params={"token": token()})
        await whole.subscribe("isp", source="queues")
        assert len((await whole.frame("queues"))["queues"]) == 9


# -- history and resume ------------------------------------------------------------------------


async def test_history_and_resume_are_per_source() -> None:
    """A queues viewer that reconnects and resumes from the last queues seq it saw gets every
    queues frame since, without a reset, whatever the interfaces stream of the router did."""
    emu = isp()
    async with isp_gateway(emu) as gw:
        first = await viewer(gw)
        check = first.check
        await first.subscribe("isp")
        await first.subscribe("isp", source="queues")
        seen = [(await first.frame("queues"))["seq"] for _ in range(3)]
        await first.frame("interfaces")
        await first.ws.close()
        interfaces_seq = check.last_seq("isp")
        assert interfaces_seq is not None
        since = check.last_seq("isp", "queues")
        assert since is not None
        assert since == seen[-1]
        again = await viewer(gw, check)
        for _ in range(2):  # let frames pass while nobody reads them
            await gw.hub.sources["isp"]["queues"].wait_frame(seconds(2))
        _, history = await again.subscribe("isp", source="queues", since=since)
        assert history["reset"] is False
        resumed = [frame["seq"] for frame in history["frames"]]
        assert resumed
        assert resumed == list(range(since + 1, since + 1 + len(resumed)))
        assert all(frame["source"] == "queues" for frame in history["frames"])
        live = await again.frame("queues")
        assert live["seq"] == resumed[-1] + 1


# -- a router without a source -----------------------------------------------------------------


async def test_a_router_without_hotspot_shows_that_source_down_and_the_others_up() -> None:
    """A router that refuses /ip/hotspot (no hotspot package) shows hotspot viewers ``down``
    with its message, retried each tick, while its interfaces and queues stay up and live."""
    emu = isp(missing_menus=("/ip/hotspot",))
    async with isp_gateway(emu) as gw:
        v = await viewer(gw)
        await v.subscribe("isp")
        await v.subscribe("isp", source="hotspot")
        await v.subscribe("isp", source="queues")
        down = None
        deadline = time.monotonic() + seconds(5)
        while down is None:
            message = await receive(v.ws, max(deadline - time.monotonic(), 0.001))
            holds(v.check.receive(message, time.monotonic()))
            if message["type"] == "status" and message["source"] == "hotspot":
                down = message if message["state"] == "down" else None
        assert "no such command or directory (hotspot)" in down["error"]
        assert v.check.state("isp", "hotspot") == "down"
        for _ in range(3):
            await v.frame("interfaces")
            await v.frame("queues")
        assert v.check.state("isp") == "up"
        assert v.check.state("isp", "queues") == "up"
        tries = emu.commands[HOTSPOT]
        await v.frame("interfaces")
        await v.frame("interfaces")
        assert emu.commands[HOTSPOT] > tries  # retried while watched
        status, body = await gw.get_json("/api/routers")
        assert status == 200
        [router] = body["routers"]
        assert router["state"] == "up"
        assert router["sources"] == ["interfaces", "queues", "hotspot"]


async def test_sources_a_router_does_not_serve_are_refused() -> None:
    """A subscribe or REST read of a source the router's settings leave out is refused naming
    the router's sources; an unknown source, and names with interfaces, are bad requests."""
    emu = isp()
    async with running(emu):
        settings = settings_from_dict(
            {
                "server": {"host": "127.0.0.1", "port": 0},
                "poll": POLL,
                "routers": [
                    {
                        "id": "isp",
                        "host": "127.0.0.1",
                        "port": emu.port,
                        "username": "admin",
                        "password": PASSWORD,
                        "sources": ["interfaces", "queues"],
                    }
                ],
            },
            source="test",
        )
        async with gateway(settings) as gw:
            ws = await gw.viewer()
            refused = "does not serve 'hotspot' (its sources: interfaces, queues)"
            for message, text in (
                ({"source": "hotspot"}, refused),
                ({"source": "ppp"}, '"source" must be one of'),
                ({"names": ["a"], "interfaces": ["b"]}, '"names" and "interfaces" are one field'),
            ):
                await send(ws, {"type": "subscribe", "router": "isp", **message})
                error = await receive(ws)
                assert error["type"] == "error", error
                assert error["code"] == "bad_request"
                assert text in error["message"]
            status, body = await gw.get_json("/api/routers/isp/hotspot")
            assert status == 404
            assert body["error"] == "unknown_source"
            assert emu.commands[HOTSPOT] == 0
