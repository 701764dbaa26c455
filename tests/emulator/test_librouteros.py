"""The emulator as librouteros sees it, through both ``connect`` and ``async_connect``.

Logins (post-6.43 and the pre-6.43 challenge), ``.proplist`` and queries, ``monitor-traffic
once``, the real traps and ``!fatal``, ``!empty``, text encodings and split reads.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any

import librouteros
import pytest
from librouteros.exceptions import FatalError, MultiTrapError, TrapError
from librouteros.query import And, Key, Or

from gateway.config import settings_from_dict
from gateway.core.model import PROPLIST
from gateway.emulator.device import Device, sized_config
from gateway.emulator.server import RouterEmulator
from gateway.emulator.session import (
    BAD_LOGIN,
    BAD_LOGIN_LEGACY,
    MAX_BEFORE_LOGIN,
    NO_SUCH_INTERFACE,
    NOT_LOGGED_IN,
)
from gateway.emulator.version import Version
from gateway.routeros import RouterClient
from tests.emulator.librouteros_client import Login
from tests.support.emulators import CLIENT_TIMEOUT, DEADLINE, Clients, Routers, rows_of
from tests.support.timing import eventually, seconds, within

RATE_FIELDS = {
    "name",
    "rx-packets-per-second",
    "rx-bits-per-second",
    "fp-rx-packets-per-second",
    "fp-rx-bits-per-second",
    "rx-drops-per-second",
    "rx-errors-per-second",
    "tx-packets-per-second",
    "tx-bits-per-second",
    "fp-tx-packets-per-second",
    "fp-tx-bits-per-second",
    "tx-drops-per-second",
    "tx-queue-drops-per-second",
    "tx-errors-per-second",
}


def exactly(message: str) -> str:
    """A ``match=`` pattern for exactly this message."""
    return f"^{re.escape(message)}$"


# -- login ----------------------------------------------------------------------------------


async def test_plain_login(login: Login, router: RouterEmulator) -> None:
    """The post-6.43 login (``/login =name= =password=``) opens a session that can print."""
    api = await login(router)
    assert await api("/system/identity/print") == [{"name": "MikroTik"}]
    stats = router.stats()
    assert (stats["logins"], stats["login_failures"]) == (1, 0)
    assert stats["commands"] == {"/login": 1, "/system/identity/print": 1}


async def test_legacy_challenge_login(login: Login, routers: Routers) -> None:
    """Against a pre-6.43 router the MD5 challenge login (``token``) takes two /login rounds."""
    router = await routers.start(sized_config(8, version=Version(6, 42, 12)))
    api = await login(router, legacy=True)
    assert await api("/system/identity/print") == [{"name": "MikroTik"}]
    assert router.stats()["commands"] == {"/login": 2, "/system/identity/print": 1}
    assert router.stats()["logins"] == 1


async def test_plain_login_to_a_legacy_router_is_not_logged_in(
    login: Login, routers: Routers
) -> None:
    """The plain login seems to succeed on a pre-6.43 router, but the next command traps."""
    router = await routers.start(sized_config(8, version=Version(6, 42, 12)))
    api = await login(router)
    with pytest.raises(TrapError, match=exactly(NOT_LOGGED_IN)):
        await api("/system/identity/print")
    assert router.stats()["logins"] == 0


async def test_wrong_password(login: Login, router: RouterEmulator) -> None:
    """A wrong password raises the real trap text, with no category."""
    with pytest.raises(TrapError, match=re.escape(BAD_LOGIN)) as raised:
        await login(router, password="wrong")
    assert raised.value.message == "invalid user name or password (6)"
    assert raised.value.category is None
    assert router.stats()["login_failures"] == 1


async def test_wrong_password_legacy(login: Login, routers: Routers) -> None:
    """A wrong password in the challenge login raises ``cannot log in``."""
    router = await routers.start(sized_config(8, version=Version(6, 42, 12)))
    with pytest.raises(TrapError, match=exactly(BAD_LOGIN_LEGACY)):
        await login(router, legacy=True, password="wrong")
    assert router.stats()["login_failures"] == 1


async def test_challenge_login_after_6_45_1_is_refused(
    login: Login, router: RouterEmulator
) -> None:
    """From 6.45.1 the old challenge login is gone: the router still sends a challenge, but
    refuses the response with the 6.43+ trap text."""
    with pytest.raises(TrapError, match=exactly(BAD_LOGIN)):
        await login(router, legacy=True)
    assert (router.logins, router.login_failures) == (0, 1)
    assert router.commands["/login"] == 2


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "cp1251"])
async def test_challenge_login_hashes_the_password_in_the_router_encoding(
    routers: Routers, encoding: str
) -> None:
    """A non-ASCII password logs in by challenge: the MD5 is over its bytes in the router's
    encoding (what RouterOS stores), not over ASCII."""
    password = "пароль-1" if encoding == "cp1251" else "p\u00e4sswort"
    device = Device(
        sized_config(8, version=Version(6, 42, 12), encoding=encoding),
        clock=routers.clock.monotonic,
        wall=routers.clock.wall,
    )
    async with RouterEmulator(device, password=password) as router:
        api = await within(
            librouteros.async_connect(
                router.host,
                "admin",
                password,
                port=router.port,
                timeout=CLIENT_TIMEOUT,
                encoding=encoding,
                login_method=_challenge_login,
            ),
            DEADLINE,
        )
        try:
            assert await rows_of(api("/system/identity/print")) == [{"name": "MikroTik"}]
        finally:
            await api.close()
        assert router.logins == 1


async def _challenge_login(api: Any, username: str, password: str) -> None:
    """librouteros' ``async_token`` with the password in the connection's encoding (its own
    ``encode_password`` takes ASCII only)."""
    [challenge] = [row async for row in api("/login")]
    digest = hashlib.md5(
        b"\x00" + password.encode(api.protocol.encoding) + bytes.fromhex(str(challenge["ret"])),
        usedforsecurity=False,
    ).hexdigest()
    [row async for row in api("/login", name=username, response=f"00{digest}")]


# -- print: .proplist and queries -----------------------------------------------------------


async def test_proplist_and_equality_query(login: Login, router: RouterEmulator) -> None:
    """``select`` sends ``.proplist`` and ``?=type=ether``: only those rows and attributes."""
    api = await login(router)
    rows = await api.select("/interface", "name", "type", where=[Key("type") == "ether"])
    assert rows == [
        {"name": "ether1", "type": "ether"},
        {"name": "ether2", "type": "ether"},
        {"name": "ether3", "type": "ether"},
        {"name": "ether4", "type": "ether"},
        {"name": "ether5", "type": "ether"},
        {"name": "sfp-sfpplus1", "type": "ether"},
    ]


@pytest.mark.parametrize("version", [Version(6, 49, 10), Version(7, 18, 2)], ids=str)
async def test_the_pollers_print_gets_exactly_the_fields_it_names(
    routers: Routers, version: Version
) -> None:
    """The poller's one request per tick gets every interface with exactly its PROPLIST fields
    (``comment`` only for an interface that has one, as RouterOS leaves out absent fields)."""
    router = await routers.start(sized_config(24, pppoe=5, version=version))
    entry = {"id": "r", "host": "127.0.0.1", "port": router.port, "username": "admin"}
    settings = settings_from_dict({"routers": [{**entry, "password": "admin"}]}, source="t", env={})
    client = RouterClient(settings.routers[0], CLIENT_TIMEOUT)
    try:
        rows = await within(client.print_interfaces(PROPLIST), DEADLINE)
    finally:
        await client.close()
    assert [row[".id"] for row in rows] == list(router.device.interfaces)
    for row in rows:
        commented = router.device.interfaces[row[".id"]].comment is not None
        expected = [f for f in PROPLIST if f != "comment" or commented]
        assert sorted(row) == sorted(expected), row["name"]


# Factories, not generators: a query generator can be used once, and each case runs twice.
QUERIES: list[tuple[str, Callable[[], Any], list[str]]] = [
    ("in", lambda: Key("name").In("ether1", "bridge", "lo"), ["ether1", "bridge", "lo"]),
    ("not-equal", lambda: Key("type") != "ether", ["bridge", "ether-café", "lo"]),
    (
        "or",
        lambda: Or(Key("type") == "bridge", Key("type") == "loopback"),
        ["bridge", "lo"],
    ),
    (
        "and",
        lambda: And(Key("type") == "ether", Key("default-name") == "ether2"),
        ["ether2"],
    ),
    ("less-than", lambda: Key("l2mtu") < 1514, ["ether-café"]),
    ("greater-than", lambda: Key("max-l2mtu") > 9214, ["sfp-sfpplus1"]),
    ("id", lambda: Key(".id") == "*3", ["ether3"]),
]


@pytest.mark.parametrize(("query", "names"), [pytest.param(q, n, id=i) for i, q, n in QUERIES])
async def test_key_queries(
    login: Login, router: RouterEmulator, query: Callable[[], Any], names: list[str]
) -> None:
    """librouteros Key queries (In, !=, Or, And, <, >, .id) select the rows a router would."""
    api = await login(router, encoding="utf-8")
    rows = await api.select("/interface", "name", where=[query()])
    assert [row["name"] for row in rows] == names


async def test_print_variants(login: Login, router: RouterEmulator) -> None:
    """``getall`` is an alias of ``print``; ``count-only`` answers the count in ``!done``."""
    api = await login(router, encoding="utf-8")
    assert await api("/interface/getall") == await api("/interface/print")
    assert await api.raw("/interface/print", "=count-only=") == [{"ret": 9}]
    assert await api.raw("/interface/print", "=count-only=", "?type=ether") == [{"ret": 6}]


async def test_proplist_of_an_absent_property(login: Login, router: RouterEmulator) -> None:
    """Rows lacking every ``.proplist`` property come as empty ``!re``, which librouteros drops."""
    api = await login(router)
    rows = await api.select("/interface", "default-name")
    assert [row["default-name"] for row in rows] == [
        "ether1",
        "ether2",
        "ether3",
        "ether4",
        "ether5",
        "sfp-sfpplus1",
    ]
    assert len(router.device.interfaces) == 9


async def test_long_word(login: Login, routers: Routers) -> None:
    """A 256-byte word (length prefix ``81 00``) reads back whole."""
    identity = "a" * (256 - len("=name="))
    router = await routers.start(sized_config(8, identity=identity))
    api = await login(router)
    assert await api("/system/identity/print") == [{"name": identity}]


async def test_replies_split_into_tiny_writes(login: Login, routers: Routers) -> None:
    """Replies written three bytes at a time, splitting length prefixes, parse the same."""
    whole = await routers.start()
    split = await routers.start(write_chunk=3)
    expected = await (await login(whole, encoding="utf-8"))("/interface/print")
    assert await (await login(split, encoding="utf-8"))("/interface/print") == expected


# -- monitor-traffic ------------------------------------------------------------------------


async def test_monitor_traffic_once(login: Login, router: RouterEmulator) -> None:
    """``once=True`` (``=once=yes``) gives one row per interface, in the order asked, then ends."""
    router.device.set_traffic("ether1", 8_000_000, 2_000_000)
    api = await login(router)
    rows = await api("/interface/monitor-traffic", interface="ether1,ether2", once=True)
    assert [row["name"] for row in rows] == ["ether1", "ether2"]
    assert all(set(row) == RATE_FIELDS for row in rows)
    assert rows[0]["rx-bits-per-second"] == 8_000_000
    assert rows[0]["tx-bits-per-second"] == 2_000_000
    assert rows[0]["rx-packets-per-second"] == 8_000_000 // 8 // 900


@pytest.mark.parametrize("once", ["=once=", "=once=yes", "=once"])
async def test_monitor_traffic_raw_once(login: Login, router: RouterEmulator, once: str) -> None:
    """Every ``once`` form clients send (empty value, ``yes``, no value) ends the command."""
    api = await login(router)
    rows = await api.raw("/interface/monitor-traffic", "=interface=sfp-sfpplus1", once)
    assert [row["name"] for row in rows] == ["sfp-sfpplus1"]


async def test_monitor_traffic_unknown_interface(login: Login, router: RouterEmulator) -> None:
    """One unknown name fails the whole call with the router's trap; the session carries on."""
    api = await login(router)
    with pytest.raises(TrapError, match=exactly(NO_SUCH_INTERFACE)):
        await api("/interface/monitor-traffic", interface="ether1,ether99", once=True)
    with pytest.raises(TrapError, match=exactly("unknown parameter numbers")):
        await api("/interface/monitor-traffic", numbers="ether1", once=True)
    assert len(await api("/interface/monitor-traffic", interface="ether1", once=True)) == 1


# -- traps, !fatal, !empty ------------------------------------------------------------------


async def test_unknown_command_gives_two_traps(login: Login, router: RouterEmulator) -> None:
    """An unknown command gets two traps, which librouteros raises as one MultiTrapError."""
    api = await login(router)
    with pytest.raises(MultiTrapError) as raised:
        await api("/interface/frobnicate")
    traps = [(trap.message, trap.category) for trap in raised.value.traps]
    assert traps == [
        ("no such command or directory (frobnicate)", 0),
        ("no such command prefix", None),
    ]
    assert await api("/system/identity/print") == [{"name": "MikroTik"}]


async def test_quit_is_fatal(login: Login, router: RouterEmulator) -> None:
    """``/quit`` is answered with ``!fatal`` and the router ends the session."""
    api = await login(router)
    with pytest.raises(FatalError, match=exactly("session terminated on request")):
        await api("/quit")
    await eventually(
        lambda: router.stats()["active_sessions"] == 0,
        timeout=seconds(2),
        message="the router closed the session",
    )


async def _no_login(api: Any, username: str, password: str) -> None:
    """A login method that skips the login."""


async def test_commands_before_login(clients: Clients, router: RouterEmulator) -> None:
    """Before login, commands trap ``not logged in``; too many of them end in ``!fatal``."""
    api = await clients.async_connect(router, login_method=_no_login)
    for _ in range(MAX_BEFORE_LOGIN):
        with pytest.raises(TrapError, match=exactly(NOT_LOGGED_IN)):
            await rows_of(api("/system/identity/print"))
    with pytest.raises(FatalError):
        await rows_of(api("/system/identity/print"))
    assert router.logins == 0


@pytest.mark.parametrize(
    ("version", "sends_empty"),
    [
        pytest.param(Version(7, 18, 2), True, id="7.18.2"),
        pytest.param(Version(7, 17), False, id="7.17"),
        pytest.param(Version(6, 49, 10), False, id="6.49.10"),
    ],
)
async def test_empty_query(
    login: Login,
    routers: Routers,
    caplog: pytest.LogCaptureFixture,
    version: Version,
    sends_empty: bool,
) -> None:
    """A query matching nothing gives ``[]``; only 7.18+ puts ``!empty`` before ``!done``."""
    router = await routers.start(sized_config(8, version=version))
    api = await login(router)
    caplog.set_level(logging.DEBUG, logger="librouteros")
    assert await api.select("/interface", "name", where=[Key("type") == "wifi"]) == []
    received = [r.getMessage() for r in caplog.records if r.getMessage().startswith("--->")]
    assert received[-1] == "---> EOS"
    assert ("---> '!empty'" in received) is sends_empty
    assert "---> '!done'" in received


# -- text encoding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("router_encoding", "client_encoding", "name"),
    [
        pytest.param("utf-8", "utf-8", "ether-café", id="utf-8"),
        pytest.param("latin-1", "latin-1", "ether-café", id="latin-1"),
        pytest.param("cp1251", "cp1251", "ether-офис", id="cp1251"),
    ],
)
async def test_non_ascii_name_with_a_matching_encoding(
    login: Login, routers: Routers, router_encoding: str, client_encoding: str, name: str
) -> None:
    """With the router's encoding, a non-ASCII name reads back intact and can be sent back."""
    router = await routers.start(sized_config(8, encoding=router_encoding))
    api = await login(router, encoding=client_encoding)
    rows = await api.select("/interface", "name", "comment", where=[Key("type") == "vlan"])
    assert rows == [{"name": name, "comment": name.replace("ether-", "office ")}]
    assert await api.select("/interface", ".id", where=[Key("name") == name]) == [{".id": "*8"}]
    monitored = await api("/interface/monitor-traffic", interface=name, once=True)
    assert [row["name"] for row in monitored] == [name]


@pytest.mark.parametrize("router_encoding", ["utf-8", "latin-1"])
async def test_ascii_client_silently_drops_non_ascii_bytes(
    login: Login, routers: Routers, router_encoding: str
) -> None:
    """The default ASCII client drops bytes it cannot decode, so the name cannot be sent back."""
    router = await routers.start(sized_config(8, encoding=router_encoding))
    api = await login(router)
    rows = await api.select("/interface", "name", where=[Key("type") == "vlan"])
    assert rows == [{"name": "ether-caf"}]
    with pytest.raises(TrapError, match=exactly(NO_SUCH_INTERFACE)):
        await api("/interface/monitor-traffic", interface="ether-caf", once=True)
    sent = router.commands.total()
    with pytest.raises(UnicodeEncodeError):
        await api("/interface/monitor-traffic", interface="ether-café", once=True)
    assert router.commands.total() == sent
