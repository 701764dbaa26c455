"""Simple queues, PPP sessions and hotspot users as librouteros (blocking and async) reads them.

Formats follow what real routers send over the API (``gateway.emulator.customers``); counters
and rates are exact because every router here runs on the test's fake clock.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from librouteros.exceptions import MultiTrapError, TrapError
from librouteros.query import Key

from gateway.demo import demo_emulators
from gateway.emulator.customers import RATE_WINDOW, Meter, Queue
from gateway.emulator.device import Device, DeviceConfig, sized_config
from gateway.emulator.interface import RX_PACKET_SIZE, TX_PACKET_SIZE
from gateway.emulator.version import Version
from tests.emulator.librouteros_client import Librouteros, Login
from tests.support.emulators import Clients, FakeClock, Routers, Row, rows_of

# What a queue poller asks for.
QUEUE_FIELDS = (
    ".id",
    "name",
    "target",
    "parent",
    "comment",
    "dynamic",
    "disabled",
    "max-limit",
    "limit-at",
    "rate",
    "packet-rate",
    "bytes",
    "packets",
)

STATIC = ["cust0001", "cust0002", "cust0003"]
PPPOE = ["<pppoe-user0001>", "<pppoe-user0002>"]
HOTSPOT = ["<hotspot-guest0001>", "<hotspot-guest0002>", "<hotspot-guest0003>"]

MAC = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")


def access_router(**kw: Any) -> DeviceConfig:
    """A small access router: 8 interfaces, 3 static plan queues, 2 PPPoE customers and 3
    hotspot users (the third on a one-hour voucher), all staying online until told."""
    return sized_config(8, pppoe=2, queues=3, hotspot=3, pppoe_session=0, hotspot_session=0, **kw)


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def pair(up: int, down: int) -> str:
    return f"{up}/{down}"


async def by_name(api: Librouteros, path: str, *keys: str, key: str = "name") -> dict[str, Row]:
    rows = await api.select(path, key, *keys)
    return {str(row[key]): row for row in rows}


# -- /queue/simple ----------------------------------------------------------------------------


async def test_queues_with_a_pollers_proplist(login: Login, routers: Routers) -> None:
    """A poller's ``.proplist`` gets every queue, static ones first, in the API's spelling."""
    router = await routers.start(access_router())
    api = await login(router, encoding="utf-8")
    rows = await api.raw("/queue/simple/print", "=.proplist=" + ",".join(QUEUE_FIELDS))
    assert [row["name"] for row in rows] == STATIC + PPPOE + HOTSPOT
    assert [row[".id"] for row in rows] == [f"*{n}" for n in range(1, 9)]
    plan = router.device.find_queue("cust0001").max_limit
    assert rows[0] == {
        ".id": "*1",
        "name": "cust0001",
        "target": "10.20.0.2/32",
        "parent": "none",
        "comment": "CID-100001 Müller",
        "dynamic": False,
        "disabled": False,
        "max-limit": pair(*plan),
        "limit-at": "0/0",
        "rate": "0/0",
        "packet-rate": "0/0",
        "bytes": "0/0",
        "packets": "0/0",
    }
    pppoe, hotspot = rows[3], rows[5]
    assert set(pppoe) == set(QUEUE_FIELDS) - {"comment"}
    assert (pppoe["target"], pppoe["dynamic"]) == ("<pppoe-user0001>", True)
    [guest] = await api.select("/ip/hotspot/active", "address", where=[Key("user") == "guest0001"])
    assert (hotspot["target"], hotspot["dynamic"]) == (f"{guest['address']}/32", True)
    for row in rows:
        assert re.fullmatch(r"\d+/\d+", row["max-limit"]), row


@pytest.mark.parametrize(
    ("version", "bucket"), [(Version(6, 49, 10), False), (Version(7, 18, 2), True)], ids=str
)
async def test_a_queue_without_proplist_has_the_whole_attribute_set(
    login: Login, routers: Routers, version: Version, bucket: bool
) -> None:
    """Without ``.proplist`` a queue row carries the router's whole set, ``bucket-size`` on v7."""
    router = await routers.start(access_router(version=version))
    api = await login(router)
    rows = await api("/queue/simple/print")
    expected = [".id", "name", "target", "parent", "packet-marks", "priority", "queue"]
    expected += ["limit-at", "max-limit", "burst-limit", "burst-threshold", "burst-time"]
    expected += ["bucket-size"] if bucket else []
    for stat in ("bytes", "packets", "dropped", "rate", "packet-rate"):
        expected += [stat, f"total-{stat}"]
    for stat in ("queued-packets", "queued-bytes"):
        expected += [stat, f"total-{stat}"]
    expected += ["invalid", "dynamic", "disabled"]
    assert list(rows[3]) == expected
    assert list(rows[0]) == [*expected, "comment"]
    assert rows[3]["packet-marks"] == ""
    assert (rows[3]["priority"], rows[3]["queue"]) == ("8/8", "default-small/default-small")
    assert (rows[3]["total-bytes"], rows[3]["burst-time"]) == (0, "0s/0s")


async def test_pppoe_queue_counts_what_its_interface_counts(
    login: Login, routers: Routers, fake_clock: FakeClock
) -> None:
    """A ``<pppoe-USER>`` queue's bytes and packets are its interface's: upload = rx."""
    router = await routers.start(sized_config(8, pppoe=4, pppoe_session=0))
    api = await login(router)
    counters = ("rx-byte", "tx-byte", "rx-packet", "tx-packet")
    moved = 0
    for step in (0.7, 3.2, 11.0, 0.4, 61.3):
        fake_clock.advance(step)
        pppoe = [Key("type") == "pppoe-in"]
        rows = await api.select("/interface", "name", *counters, where=pppoe)
        interfaces = {row["name"]: row for row in rows}
        # librouteros sends the boolean as ?=dynamic=yes.
        dynamic = [Key("dynamic") == True]  # noqa: E712
        queues = await api.select("/queue/simple", "name", "bytes", "packets", where=dynamic)
        assert sorted(q["name"] for q in queues) == sorted(interfaces)
        for queue in queues:
            iface = interfaces[queue["name"]]
            assert queue["bytes"] == pair(iface["rx-byte"], iface["tx-byte"])
            assert queue["packets"] == pair(iface["rx-packet"], iface["tx-packet"])
            moved += iface["tx-byte"]
    assert moved > 0


async def test_queue_rates_are_the_routers_own_averages(
    login: Login, routers: Routers, fake_clock: FakeClock
) -> None:
    """``rate`` and ``packet-rate`` are 0/0 on a new queue, then the average bits/s and packets/s
    over the router's last window; bytes grow by rate x time, upload first."""
    router = await routers.start(access_router())
    device = router.device
    device.set_queue_traffic("<pppoe-user0001>", 800_000, 8_000_000)
    device.set_queue_traffic("cust0002", 1_000_000, 4_000_000)
    api = await login(router)
    fields = ("rate", "packet-rate", "bytes")
    assert (await by_name(api, "/queue/simple", *fields))["cust0002"]["rate"] == "0/0"
    fake_clock.advance(10)
    rows = await by_name(api, "/queue/simple", *fields)
    pppoe = rows["<pppoe-user0001>"]
    assert pppoe["rate"] == "800000/8000000"
    assert pppoe["bytes"] == "1000000/10000000"
    up, down = 1_000_000 // RX_PACKET_SIZE, 10_000_000 // TX_PACKET_SIZE
    assert pppoe["packet-rate"] == pair(round(up / 10), round(down / 10))
    assert (rows["cust0002"]["rate"], rows["cust0002"]["bytes"]) == (
        "1000000/4000000",
        "1250000/5000000",
    )
    [iface] = await api.select("/interface", "rx-byte", "tx-byte", where=[Key("name") == PPPOE[0]])
    assert (iface["rx-byte"], iface["tx-byte"]) == (1_000_000, 10_000_000)
    # Within a window the figures stand; a disabled queue stops counting and its rate falls to 0.
    device.set_queue_disabled("cust0002", True)
    fake_clock.advance(RATE_WINDOW / 2)
    assert (await by_name(api, "/queue/simple", *fields))["cust0002"]["rate"] == "1000000/4000000"
    fake_clock.advance(RATE_WINDOW)
    row = (await by_name(api, "/queue/simple", *fields, "disabled"))["cust0002"]
    assert (row["rate"], row["bytes"], row["disabled"]) == ("0/0", "1250000/5000000", True)


async def test_queue_queries(login: Login, routers: Routers) -> None:
    """Queries select queues as the router does: booleans as ``true`` or ``yes``, names,
    present or absent comments, and ``count-only``."""
    router = await routers.start(access_router())
    api = await login(router)

    async def names(*words: str) -> list[str]:
        return [
            row["name"] for row in await api.raw("/queue/simple/print", "=.proplist=name", *words)
        ]

    assert await names("?dynamic=true") == PPPOE + HOTSPOT
    assert await names("?=dynamic=no") == STATIC
    assert await names("?name=<pppoe-user0002>") == ["<pppoe-user0002>"]
    assert await names("?comment") == STATIC
    assert await names("?-comment", "?target=<pppoe-user0001>") == ["<pppoe-user0001>"]
    assert await names("?name=cust0003", "?name=<pppoe-user0002>", "?#|") == [
        "cust0003",
        "<pppoe-user0002>",
    ]
    assert await api.raw("/queue/simple/print", "=count-only=", "?dynamic=yes") == [{"ret": 5}]
    rows = await api.select("/queue/simple", "name", where=[Key("name").In(*PPPOE)])
    assert [row["name"] for row in rows] == PPPOE


async def test_queue_reset_counters(login: Login, routers: Routers, fake_clock: FakeClock) -> None:
    """``/queue/simple/reset-counters`` zeroes the queues named (by name or ``.id``) and no
    interface; ``/interface/reset-counters`` leaves queues alone; an unknown item traps."""
    router = await routers.start(access_router())
    device = router.device
    for name in ("cust0001", *PPPOE):
        device.set_queue_traffic(name, 800_000, 8_000_000)
    api = await login(router)
    fake_clock.advance(10)
    pppoe_id = device.find_queue(PPPOE[0]).id
    assert await api.raw("/queue/simple/reset-counters", f"=numbers=cust0001,{pppoe_id}") == []
    rows = await by_name(api, "/queue/simple", "bytes", "packets")
    assert rows["cust0001"]["bytes"] == rows[PPPOE[0]]["bytes"] == "0/0"
    assert rows[PPPOE[0]]["packets"] == "0/0"
    assert rows[PPPOE[1]]["bytes"] == "1000000/10000000"
    interfaces = await by_name(api, "/interface", "rx-byte")
    assert interfaces[PPPOE[0]]["rx-byte"] == 1_000_000
    with pytest.raises(TrapError, match=exactly("no such item")):
        await api.raw("/queue/simple/reset-counters", "=numbers=cust0002,cust9999")
    assert (await by_name(api, "/queue/simple", "bytes"))[PPPOE[1]]["bytes"] != "0/0"
    await api.raw("/interface/reset-counters", f"=numbers={PPPOE[1]}")
    assert (await by_name(api, "/queue/simple", "bytes"))[PPPOE[1]]["bytes"] == "1000000/10000000"
    assert await api("/queue/simple/reset-counters-all") == []
    assert {row["bytes"] for row in await api.select("/queue/simple", "bytes")} == {"0/0"}


# -- /ppp/active ------------------------------------------------------------------------------


async def test_ppp_sessions(login: Login, routers: Routers, fake_clock: FakeClock) -> None:
    """One ``/ppp/active`` row per PPPoE session: the user, ``pppoe``, the CPE's MAC, an
    address, the uptime in RouterOS's ``1w2d3h4m5s`` form; no counters."""
    router = await routers.start(access_router())
    api = await login(router)
    fake_clock.advance(7 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5)
    rows = await api("/ppp/active/print")
    assert rows[0] == {
        ".id": "*1",
        "name": "user0001",
        "service": "pppoe",
        "caller-id": "48:A9:8A:00:00:01",
        "address": "100.64.0.2",
        "uptime": "1w2d3h4m5s",
        "encoding": "",
        "session-id": "0x81000001",
        "limit-bytes-in": 0,
        "limit-bytes-out": 0,
        "radius": False,
    }
    assert [(row["name"], row["address"]) for row in rows] == [
        ("user0001", "100.64.0.2"),
        ("user0002", "100.64.0.3"),
    ]
    proplist = ".id,name,service,caller-id,address,uptime"
    rows = await api.raw("/ppp/active/print", f"=.proplist={proplist}", "?name=user0002")
    assert [set(row) for row in rows] == [set(proplist.split(","))]
    assert MAC.match(rows[0]["caller-id"])


@pytest.mark.parametrize(
    ("elapsed", "uptime"),
    [(0, "0s"), (245, "4m5s"), (3600, "1h"), (86400 + 61, "1d1m1s"), (15 * 604800 + 3, "15w3s")],
)
async def test_ppp_uptime_leaves_zero_parts_out(
    clients: Clients, routers: Routers, fake_clock: FakeClock, elapsed: int, uptime: str
) -> None:
    """A session's uptime prints like the router's: zero parts left out, ``0s`` at login."""
    router = await routers.start(sized_config(8, pppoe=1, pppoe_session=0))
    api = await clients.async_connect(router)
    fake_clock.advance(elapsed)
    [row] = await rows_of(api("/ppp/active/print", **{".proplist": "uptime"}))
    assert row == {"uptime": uptime}


async def test_redial_brings_a_new_interface_session_and_queue(
    login: Login, routers: Routers, fake_clock: FakeClock
) -> None:
    """A customer who re-dials is gone from all three menus at once, then back in all three
    with new ``.id``s, counters and uptime from zero, the same MAC and address."""
    router = await routers.start(access_router())
    device = router.device
    device.set_queue_traffic(PPPOE[0], 800_000, 8_000_000)
    api = await login(router)
    fake_clock.advance(100)

    async def customer() -> tuple[list[Row], list[Row], list[Row]]:
        return (
            await api.select("/interface", ".id", "rx-byte", where=[Key("name") == PPPOE[0]]),
            await api.select("/queue/simple", ".id", "bytes", where=[Key("name") == PPPOE[0]]),
            await api.select(
                "/ppp/active",
                ".id",
                "uptime",
                "caller-id",
                "address",
                where=[Key("name") == "user0001"],
            ),
        )

    [iface], [queue], [ppp] = await customer()
    assert (iface["rx-byte"], queue["bytes"], ppp["uptime"]) == (
        10_000_000,
        "10000000/100000000",
        "1m40s",
    )
    assert device.drop_pppoe("user0001")
    assert await customer() == ([], [], [])
    assert len(await api("/ppp/active/print")) == 1
    fake_clock.advance(device.config.pppoe_redial)
    [iface2], [queue2], [ppp2] = await customer()
    assert iface2[".id"] != iface[".id"]
    assert queue2[".id"] != queue[".id"]
    assert ppp2[".id"] != ppp[".id"]
    assert (iface2["rx-byte"], queue2["bytes"], ppp2["uptime"]) == (0, "0/0", "0s")
    assert (ppp2["caller-id"], ppp2["address"]) == (ppp["caller-id"], ppp["address"])
    order = [row["name"] for row in await api.select("/queue/simple", "name")]
    assert order[-1] == PPPOE[0], "a new dynamic queue goes to the end of the list"


async def test_removing_a_ppp_session_disconnects_the_customer(
    login: Login, routers: Routers
) -> None:
    """``/ppp/active/remove`` by ``.id`` or by name hangs the customer up (interface and queue
    go too); an unknown item traps ``no such item`` and removes nothing."""
    router = await routers.start(access_router())
    api = await login(router)
    with pytest.raises(TrapError, match=exactly("no such item")):
        await api.raw("/ppp/active/remove", "=.id=*1,*99")
    assert await api.raw("/ppp/active/remove", "=.id=*1") == []
    assert await api.raw("/ppp/active/remove", "=numbers=user0002") == []
    assert await api("/ppp/active/print") == []
    assert await api.select("/interface", "name", where=[Key("type") == "pppoe-in"]) == []
    assert await api.select("/queue/simple", "name", where=[Key("target").In(*PPPOE)]) == []


# -- /ip/hotspot/active -----------------------------------------------------------------------


async def test_hotspot_users(login: Login, routers: Routers, fake_clock: FakeClock) -> None:
    """A hotspot row's ``bytes-in`` is what the user sent; its ``<hotspot-USER>`` queue counts
    the same, upload first; a voucher user shows the time it has left."""
    router = await routers.start(access_router())
    router.device.set_hotspot_traffic("guest0001", 800_000, 8_000_000)
    api = await login(router)
    fake_clock.advance(10)
    rows = await api("/ip/hotspot/active/print")
    assert [row["user"] for row in rows] == ["guest0001", "guest0002", "guest0003"]
    assert rows[0] == {
        ".id": "*1",
        "server": "hotspot1",
        "user": "guest0001",
        "address": "10.5.50.2",
        "mac-address": "3C:2E:FF:00:00:01",
        "login-by": "http-chap",
        "uptime": "10s",
        "idle-time": "0s",
        "keepalive-timeout": "2m",
        "bytes-in": 1_000_000,
        "bytes-out": 10_000_000,
        "packets-in": 1_000_000 // RX_PACKET_SIZE,
        "packets-out": 10_000_000 // TX_PACKET_SIZE,
        "radius": False,
    }
    assert rows[2]["session-time-left"] == "59m50s"
    [queue] = await api.select(
        "/queue/simple", "target", "bytes", "packets", where=[Key("name") == HOTSPOT[0]]
    )
    assert queue == {
        "target": "10.5.50.2/32",
        "bytes": "1000000/10000000",
        "packets": pair(1_000_000 // RX_PACKET_SIZE, 10_000_000 // TX_PACKET_SIZE),
    }
    fields = ".id,server,user,address,mac-address,uptime,bytes-in,bytes-out,packets-in,packets-out"
    fields += ",comment"
    rows = await api.raw("/ip/hotspot/active/print", f"=.proplist={fields}", "?user=guest0002")
    assert [set(row) for row in rows] == [set(fields.split(",")) - {"comment"}]


async def test_a_relogin_is_a_new_entry_from_zero(
    login: Login, routers: Routers, fake_clock: FakeClock
) -> None:
    """A user who logs out vanishes with its queue; logging in again (by cookie) gives a new
    ``.id`` and counters from zero; ``remove`` logs a user out over the API."""
    router = await routers.start(access_router())
    device = router.device
    device.set_hotspot_traffic("guest0001", 800_000, 8_000_000)
    api = await login(router)
    fake_clock.advance(10)
    fields = (".id", "bytes-in", "login-by")
    before = (await by_name(api, "/ip/hotspot/active", *fields, key="user"))["guest0001"]
    assert device.logout_hotspot("guest0001")
    assert "guest0001" not in await by_name(api, "/ip/hotspot/active", key="user")
    assert HOTSPOT[0] not in await by_name(api, "/queue/simple")
    fake_clock.advance(device.config.hotspot_relogin)
    after = (await by_name(api, "/ip/hotspot/active", *fields, key="user"))["guest0001"]
    assert after[".id"] != before[".id"]
    assert (before["bytes-in"], after["bytes-in"], after["login-by"]) == (1_000_000, 0, "cookie")
    assert (await by_name(api, "/queue/simple", "bytes"))[HOTSPOT[0]]["bytes"] == "0/0"
    [guest2] = await api.select("/ip/hotspot/active", ".id", where=[Key("user") == "guest0002"])
    assert await api.raw("/ip/hotspot/active/remove", f"=.id={guest2['.id']}") == []
    assert "guest0002" not in await by_name(api, "/ip/hotspot/active", key="user")
    with pytest.raises(TrapError, match=exactly("no such item")):
        await api.raw("/ip/hotspot/active/remove", f"=.id={guest2['.id']}")


async def test_a_voucher_ends_its_session(
    clients: Clients, routers: Routers, fake_clock: FakeClock
) -> None:
    """A voucher user is logged out when its hour is used up, with no time left to show."""
    router = await routers.start(access_router())
    api = await clients.async_connect(router)

    async def users() -> list[Row]:
        fields = {".proplist": "user,session-time-left"}
        return await rows_of(api("/ip/hotspot/active/print", **fields))

    fake_clock.advance(3599)
    assert (await users())[-1] == {"user": "guest0003", "session-time-left": "1s"}
    fake_clock.advance(1)
    assert [row["user"] for row in await users()] == ["guest0001", "guest0002"]


# -- all three menus --------------------------------------------------------------------------

MENUS = ["/queue/simple", "/ppp/active", "/ip/hotspot/active"]


@pytest.mark.parametrize("menu", MENUS)
@pytest.mark.parametrize(
    ("version", "sends_empty"),
    [(Version(7, 18, 2), True), (Version(7, 17), False), (Version(6, 49, 10), False)],
    ids=str,
)
async def test_an_empty_menu(
    clients: Clients,
    routers: Routers,
    caplog: pytest.LogCaptureFixture,
    menu: str,
    version: Version,
    sends_empty: bool,
) -> None:
    """A router without customers answers each menu with nothing; 7.18+ says ``!empty`` first."""
    router = await routers.start(sized_config(8, version=version))
    api = await clients.async_connect(router)
    caplog.set_level(logging.DEBUG, logger="librouteros")
    assert await rows_of(api(f"{menu}/print")) == []
    received = [r.getMessage() for r in caplog.records if r.getMessage().startswith("--->")]
    assert received[-1] == "---> EOS"
    assert ("---> '!empty'" in received) is sends_empty
    assert "---> '!done'" in received


async def test_unknown_commands_and_parameters(login: Login, routers: Routers) -> None:
    """Unknown commands in and beside the new menus, and unknown print parameters, get the
    router's real traps; the session carries on."""
    router = await routers.start(access_router())
    api = await login(router)
    with pytest.raises(MultiTrapError) as raised:
        await api("/queue/simple/frobnicate")
    assert [(t.message, t.category) for t in raised.value.traps] == [
        ("no such command or directory (frobnicate)", 0),
        ("no such command prefix", None),
    ]
    for command, unknown in (("/ppp/secret/print", "secret"), ("/ip/hotspot/user/print", "user")):
        with pytest.raises(MultiTrapError) as raised:
            await api(command)
        assert raised.value.traps[0].message == f"no such command or directory ({unknown})"
    with pytest.raises(TrapError, match=exactly("unknown parameter bogus")):
        await api.raw("/ppp/active/print", "=bogus=1")
    with pytest.raises(TrapError, match=exactly("missing value(s) of argument(s) numbers")):
        await api("/queue/simple/reset-counters")
    assert len(await api("/queue/simple/print")) == 8


async def test_reboot_restarts_every_customer(
    clients: Clients, routers: Routers, fake_clock: FakeClock
) -> None:
    """After a reboot static queues count from zero and every session is new: new ``.id``s,
    uptime from zero."""
    router = await routers.start(access_router())
    router.device.set_queue_traffic("cust0001", 800_000, 8_000_000)
    fake_clock.advance(100)
    old_queue_ids = set(router.device.queues)
    old_ppp = set(router.device.ppp_active)
    old_hotspot = set(router.device.hotspot_active)
    await router.reboot()
    api = await clients.async_connect(router)
    queues = {row["name"]: row for row in await rows_of(api("/queue/simple/print"))}
    assert queues["cust0001"]["bytes"] == "0/0"
    assert queues["cust0001"][".id"] == "*1"
    dynamic = {row[".id"] for row in queues.values() if row["dynamic"]}
    assert len(dynamic) == 5
    assert dynamic.isdisjoint(old_queue_ids)
    ppp = await rows_of(api("/ppp/active/print"))
    assert {row[".id"] for row in ppp}.isdisjoint(old_ppp)
    assert {row["uptime"] for row in ppp} == {"0s"}
    hotspot = await rows_of(api("/ip/hotspot/active/print"))
    assert len(hotspot) == 3
    assert {row[".id"] for row in hotspot}.isdisjoint(old_hotspot)


async def test_the_demos_isp_router_serves_queues_and_ppp_sessions() -> None:
    """The demo's ISP router has static plan queues and, per PPPoE customer, a PPP session and
    a queue; the office router has hotspot guests."""
    emulators = demo_emulators()
    isp = emulators["isp-bras"][1].device
    pppoe = sum(1 for iface in isp.interfaces.values() if iface.type == "pppoe-in")
    assert pppoe == len(isp.ppp_active) == 300
    assert sum(1 for q in isp.queues.values() if not q.dynamic) == 40
    assert sum(1 for q in isp.queues.values() if q.dynamic) == 300
    assert len(emulators["office"][1].device.hotspot_active) == 12


# -- the router's own measuring, without a client ---------------------------------------------


def test_a_queue_measures_over_whole_windows() -> None:
    """A queue's rate stays until a window of ``RATE_WINDOW`` has passed, then is its average."""
    assert RATE_WINDOW == 1.0
    queue = Queue(1, "q", "10.0.0.2/32", (0, 0), window_start=100.0)
    queue.meter.add(125_000, 500_000)
    queue.measure(100.5)
    assert queue.rate == (0, 0)
    queue.measure(102.0)
    assert queue.rate == (500_000, 2_000_000)
    assert queue.packet_rate == (
        125_000 // RX_PACKET_SIZE // 2,
        round(500_000 // TX_PACKET_SIZE / 2),
    )
    queue.measure(103.0)
    assert queue.rate == (0, 0)
    queue.meter.add(10, 10)
    queue.reset_counters(200.0)
    assert (queue.meter.counts(), queue.rate, queue.window_start) == ((0, 0, 0, 0), (0, 0), 200.0)


def test_a_meter_carries_fractions() -> None:
    """Fractions of bytes and packets add up over many small steps instead of being lost."""
    meter = Meter()
    for _ in range(1000):
        meter.add(0.5, 4.25)
    assert meter.counts() == (500, 4250, 500 // RX_PACKET_SIZE, 4250 // TX_PACKET_SIZE)


async def test_queue_print_with_many_customers(
    clients: Clients, routers: Routers, fake_clock: FakeClock
) -> None:
    """An ISP-sized router (2,000 static queues, 2,000 PPPoE customers) answers one queue print
    with every queue."""
    router = await routers.start(sized_config(24, pppoe=2000, queues=2000, pppoe_session=0))
    api = await clients.async_connect(router)
    fake_clock.advance(1)
    rows = await rows_of(api("/queue/simple/print", **{".proplist": ".id,name,bytes,rate"}))
    assert len(rows) == 4000
    assert len({row[".id"] for row in rows}) == 4000
    assert router.commands["/queue/simple/print"] == 1


async def test_a_router_without_the_hotspot_package_refuses_its_menu(
    login: Login, routers: Routers
) -> None:
    """A router without a package answers that package's menus as RouterOS 6 does: no such
    command, naming the first part it lacks, and the session carries on."""
    router = await routers.start(access_router(missing_menus=("/ip/hotspot",)))
    api = await login(router)
    with pytest.raises(MultiTrapError) as raised:
        await api("/ip/hotspot/active/print")
    assert raised.value.traps[0].message == "no such command or directory (hotspot)"
    assert len(await api("/queue/simple/print")) == 8


def test_shaped_customers_stay_within_their_plans() -> None:
    """A queue shapes its customer: over a whole evening, bursts included, no queue's rate
    passes its max-limit (a dashboard's "% of plan" stays at or under 100)."""
    now = [0.0]
    # 20:00 to 22:00 UTC, the emulated traffic's daily peak, in 10 s steps.
    start = 20 * 3600.0
    device = Device(
        sized_config(4, pppoe=60, queues=60, hotspot=20, pppoe_session=0, hotspot_session=0),
        clock=lambda: now[0],
        wall=lambda: start + now[0],
    )
    worst = 0.0
    for _ in range(720):
        now[0] += 10.0
        device.advance()
        for queue in device.queues.values():
            for rate, limit in zip(queue.rate, queue.max_limit, strict=True):
                if limit:
                    worst = max(worst, rate / limit)
    assert 0.3 < worst <= 1.0, f"a queue ran at {worst:.0%} of its plan"
