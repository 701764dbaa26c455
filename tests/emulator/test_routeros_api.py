"""The emulator as the independent ``routeros_api`` library (PyPI ``RouterOS-api``) sees it.

Unlike librouteros, routeros_api tags every command (``.tag=N``) and matches replies by tag, so
these tests also prove the emulator echoes tags on every reply sentence.
"""

from __future__ import annotations

import re

import pytest
from routeros_api.exceptions import RouterOsApiCommunicationError, RouterOsApiParsingError

from gateway.emulator.device import Device, DeviceConfig, NamedInterface, sized_config
from gateway.emulator.server import RouterEmulator
from gateway.emulator.session import BAD_LOGIN, BAD_LOGIN_LEGACY, NO_SUCH_INTERFACE
from gateway.emulator.version import Version
from tests.support.emulators import Clients, FakeClock, Routers, in_thread
from tests.support.timing import eventually, seconds


async def test_plaintext_login(clients: Clients, router: RouterEmulator) -> None:
    """``plaintext_login=True`` logs in with the post-6.43 /login and can print."""
    api = await clients.routeros_api(router)
    rows = await in_thread(lambda: api.get_resource("/system/identity").get())
    assert rows == [{"name": "MikroTik"}]
    assert router.stats()["logins"] == 1


@pytest.mark.parametrize("plaintext_login", [False, True], ids=["challenge", "plaintext-first"])
async def test_legacy_challenge_login(
    clients: Clients, routers: Routers, plaintext_login: bool
) -> None:
    """A pre-6.43 router answers any /login with a challenge, and the MD5 response logs in."""
    router = await routers.start(sized_config(8, version=Version(6, 42, 12)))
    api = await clients.routeros_api(router, plaintext_login=plaintext_login)
    rows = await in_thread(lambda: api.get_resource("/system/identity").get())
    assert rows == [{"name": "MikroTik"}]
    assert router.commands["/login"] == 2
    assert router.logins == 1


@pytest.mark.parametrize(
    ("version", "legacy", "message"),
    [
        pytest.param(Version(7, 18, 2), False, BAD_LOGIN, id="post-6.43"),
        pytest.param(Version(6, 42, 12), True, BAD_LOGIN_LEGACY, id="pre"),
    ],
)
async def test_wrong_password(
    clients: Clients, routers: Routers, version: Version, legacy: bool, message: str
) -> None:
    """A wrong password raises the router's trap text in both login modes."""
    router = await routers.start(sized_config(8, version=version))
    with pytest.raises(RouterOsApiCommunicationError) as raised:
        await clients.routeros_api(router, password="wrong", plaintext_login=not legacy)
    assert raised.value.original_message == message.encode()
    assert router.login_failures == 1


@pytest.mark.parametrize(
    ("version", "plaintext", "challenge"),
    [
        pytest.param(Version(6, 42, 12), None, True, id="6.42.12"),
        pytest.param(Version(6, 44, 6), True, True, id="6.44.6"),
        pytest.param(Version(6, 45, 1), True, False, id="6.45.1"),
        pytest.param(Version(7, 18, 2), True, False, id="7.18.2"),
    ],
)
async def test_version_decides_the_login(
    clients: Clients,
    routers: Routers,
    version: Version,
    plaintext: bool | None,
    challenge: bool,
) -> None:
    """The login methods a router takes follow its version: 6.43 added one, 6.45.1 removed one.

    ``plaintext`` None: the plain /login gets a challenge back and the client answers it.
    """
    router = await routers.start(sized_config(8, version=version))
    api = await clients.routeros_api(router, plaintext_login=True)
    assert await in_thread(lambda: api.get_resource("/system/identity").get())
    assert router.commands["/login"] == (1 if plaintext else 2)
    if challenge:
        api = await clients.routeros_api(router, plaintext_login=False)
        assert await in_thread(lambda: api.get_resource("/system/identity").get())
        assert router.logins == 2
    else:
        with pytest.raises(RouterOsApiCommunicationError) as raised:
            await clients.routeros_api(router, plaintext_login=False)
        assert raised.value.original_message == BAD_LOGIN.encode()
        assert (router.logins, router.login_failures) == (1, 1)


async def test_query_and_proplist(clients: Clients, router: RouterEmulator) -> None:
    """Keyword queries become ``?type=``/``?name=`` words; ``.proplist`` limits the attributes."""
    api = await clients.routeros_api(router)
    interfaces = api.get_resource("/interface")
    vlans = await in_thread(lambda: interfaces.get(type="vlan"))
    assert [row["name"] for row in vlans] == ["ether-café"]
    assert vlans[0]["id"] == "*8"
    assert vlans[0]["comment"] == "office café"
    [uplink] = await in_thread(lambda: interfaces.get(name="sfp-sfpplus1"))
    assert (uplink["id"], uplink["comment"]) == ("*6", "uplink")
    rows = await in_thread(
        lambda: interfaces.call("print", {".proplist": "name,running"}, {"type": "ether"})
    )
    assert rows[-2:] == [
        {"name": "ether5", "running": "false"},
        {"name": "sfp-sfpplus1", "running": "true"},
    ]
    assert all(set(row) == {"name", "running"} for row in rows)


async def test_monitor_traffic_once(clients: Clients, router: RouterEmulator) -> None:
    """routeros_api sends an empty ``once`` as ``=once`` (no second ``=``); the router takes it."""
    router.device.set_traffic("ether1", 8_000_000, 2_000_000)
    api = await clients.routeros_api(router)
    root = api.get_binary_resource("/")
    args = {"interface": b"ether1,sfp-sfpplus1", "once": b""}
    rows = await in_thread(lambda: root.call("interface/monitor-traffic", args))
    assert b"=once" in rows.command.get_api_format()
    assert [row["name"] for row in rows] == [b"ether1", b"sfp-sfpplus1"]
    assert rows[0]["rx-bits-per-second"] == b"8000000"
    assert rows[0]["tx-bits-per-second"] == b"2000000"


async def test_traps(clients: Clients, router: RouterEmulator) -> None:
    """Traps come back tagged: the library raises them and the session carries on."""
    api = await clients.routeros_api(router)
    root = api.get_binary_resource("/")
    with pytest.raises(RouterOsApiCommunicationError) as raised:
        await in_thread(lambda: root.call("interface/monitor-traffic", {"interface": b"ether99"}))
    assert raised.value.original_message == NO_SUCH_INTERFACE.encode()
    # Of the two traps for an unknown command, routeros_api keeps the last.
    with pytest.raises(RouterOsApiCommunicationError) as raised:
        await in_thread(lambda: root.call("interface/frobnicate"))
    assert raised.value.original_message == b"no such command prefix"
    rows = await in_thread(lambda: api.get_resource("/system/identity").get())
    assert rows == [{"name": "MikroTik"}]


async def test_quit(clients: Clients, router: RouterEmulator) -> None:
    """``/quit`` gets ``!fatal``, whose bare reason word routeros_api fails to parse."""
    api = await clients.routeros_api(router)
    root = api.get_binary_resource("/")
    with pytest.raises(RouterOsApiParsingError, match=re.escape("session terminated on request")):
        await in_thread(lambda: root.call("quit"))
    await eventually(
        lambda: router.stats()["active_sessions"] == 0,
        timeout=seconds(2),
        message="the router closed the session",
    )


async def test_empty_query(clients: Clients, routers: Routers) -> None:
    """RouterOS 7.18+ answers an empty query with a tagged ``!empty``; the library gives []."""
    router = await routers.start(sized_config(8, version=Version(7, 18, 2)))
    api = await clients.routeros_api(router)
    assert await in_thread(lambda: api.get_resource("/interface").get(type="wifi")) == []
    rows = await in_thread(lambda: api.get_resource("/system/identity").get())
    assert rows == [{"name": "MikroTik"}]


@pytest.mark.parametrize(
    ("encoding", "name"),
    [
        pytest.param("utf-8", "ether-café", id="utf-8"),
        # The library decodes as UTF-8, escaping bytes that do not fit.
        pytest.param("latin-1", "ether-caf\\xe9", id="latin-1"),
    ],
)
async def test_non_ascii_name(clients: Clients, routers: Routers, encoding: str, name: str) -> None:
    """Names reach the library as the router's bytes; it decodes them as UTF-8."""
    router = await routers.start(sized_config(8, encoding=encoding))
    api = await clients.routeros_api(router)
    rows = await in_thread(lambda: api.get_resource("/interface").get(type="vlan"))
    assert [row["name"] for row in rows] == [name]
    raw = await in_thread(lambda: api.get_binary_resource("/interface").get(type="vlan"))
    assert raw[0]["name"] == "ether-café".encode(encoding)


async def test_named_interfaces_carry_their_ids_and_bytes(
    clients: Clients, routers: Routers
) -> None:
    """``DeviceConfig(named=...)`` rows have the chosen ``.id``s and the name's bytes in the
    device's encoding; a lone surrogate stands for one raw byte."""
    named = (
        NamedInterface("<pppoe-nuñez>", "pppoe-in", number=4),
        NamedInterface("<pppoe-nuez>", "pppoe-in", number=5),
        NamedInterface("raw-\udcff", comment="any byte"),
    )
    config = DeviceConfig(
        ethernet=1, sfp=0, bridge=False, non_ascii_name=False, encoding="latin-1", named=named
    )
    router = await routers.start(config)
    api = await clients.routeros_api(router)
    rows = await in_thread(lambda: api.get_binary_resource("/interface").get())
    by_id = {row["id"]: row for row in rows}
    assert by_id[b"*4"]["name"] == b"<pppoe-nu\xf1ez>"
    assert by_id[b"*4"]["type"] == b"pppoe-in"
    assert by_id[b"*5"]["name"] == b"<pppoe-nuez>"
    assert by_id[b"*6"]["name"] == b"raw-\xff"
    assert by_id[b"*6"]["comment"] == b"any byte"
    with pytest.raises(ValueError, match=r"\*4 is taken"):
        Device(DeviceConfig(named=(named[0], named[0])))


async def test_replies_split_into_tiny_writes(clients: Clients, routers: Routers) -> None:
    """Replies written three bytes at a time parse the same as whole ones."""
    whole = await routers.start()
    split = await routers.start(write_chunk=3)
    expected_api = await clients.routeros_api(whole)
    split_api = await clients.routeros_api(split)
    expected = await in_thread(lambda: expected_api.get_resource("/interface").get())
    assert await in_thread(lambda: split_api.get_resource("/interface").get()) == expected


def _access_router() -> DeviceConfig:
    """3 static plan queues, 2 PPPoE customers and 2 hotspot users who stay online."""
    return sized_config(8, pppoe=2, queues=3, hotspot=2, pppoe_session=0, hotspot_session=0)


async def test_queues_ppp_sessions_and_hotspot_users(
    clients: Clients, routers: Routers, fake_clock: FakeClock
) -> None:
    """The three customer menus answer in tagged replies that routeros_api reads, with keyword
    queries and ``.proplist``; a queue counts what its PPPoE interface counts."""
    router = await routers.start(_access_router())
    router.device.set_queue_traffic("<pppoe-user0002>", 800_000, 8_000_000)
    fake_clock.advance(10)
    api = await clients.routeros_api(router)
    queues = api.get_resource("/queue/simple")
    dynamic = await in_thread(lambda: queues.get(dynamic="true"))
    assert [row["name"] for row in dynamic] == [
        "<pppoe-user0001>",
        "<pppoe-user0002>",
        "<hotspot-guest0001>",
        "<hotspot-guest0002>",
    ]
    [pppoe] = await in_thread(lambda: queues.get(name="<pppoe-user0002>"))
    assert (pppoe["target"], pppoe["dynamic"], pppoe["parent"]) == (
        "<pppoe-user0002>",
        "true",
        "none",
    )
    assert (pppoe["bytes"], pppoe["rate"]) == ("1000000/10000000", "800000/8000000")
    [iface] = await in_thread(lambda: api.get_resource("/interface").get(name="<pppoe-user0002>"))
    assert (iface["rx-byte"], iface["tx-byte"]) == ("1000000", "10000000")
    rows = await in_thread(
        lambda: queues.call("print", {".proplist": "name,comment,max-limit"}, {"dynamic": "false"})
    )
    assert [row["name"] for row in rows] == ["cust0001", "cust0002", "cust0003"]
    assert rows[1]["comment"] == "CID-100002"
    assert all(set(row) == {"name", "comment", "max-limit"} for row in rows)
    ppp = await in_thread(lambda: api.get_resource("/ppp/active").get())
    assert [(row["id"], row["name"], row["service"]) for row in ppp] == [
        ("*1", "user0001", "pppoe"),
        ("*2", "user0002", "pppoe"),
    ]
    assert ppp[0]["uptime"] == "10s"
    hotspot = await in_thread(lambda: api.get_resource("/ip/hotspot/active").get(user="guest0002"))
    assert [(row["server"], row["address"]) for row in hotspot] == [("hotspot1", "10.5.50.3")]
    assert hotspot[0]["bytes-in"].isdigit()


@pytest.mark.parametrize("menu", ["/queue/simple", "/ppp/active", "/ip/hotspot/active"])
async def test_an_empty_customer_menu(clients: Clients, routers: Routers, menu: str) -> None:
    """On 7.18+ an empty menu answers a tagged ``!empty``; the library gives [] and carries on."""
    router = await routers.start(sized_config(8, version=Version(7, 18, 2)))
    api = await clients.routeros_api(router)
    assert await in_thread(lambda: api.get_resource(menu).get()) == []
    assert await in_thread(lambda: api.get_resource(menu).get(dynamic="true")) == []
    rows = await in_thread(lambda: api.get_resource("/system/identity").get())
    assert rows == [{"name": "MikroTik"}]
