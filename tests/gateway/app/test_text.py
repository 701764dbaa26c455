"""Router text reaches viewers exactly, and a name picked by a user matches that name only.

Every test runs the real path: the emulated router's bytes on the wire, librouteros in the
gateway, the poller, the hub, and a websocket (or REST) client, all over loopback.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Final

import jwt
import pytest

from gateway.config import Settings, load_settings, settings_from_dict
from gateway.core.text import MARK
from gateway.emulator.device import Device, DeviceConfig, NamedInterface
from gateway.emulator.server import RouterEmulator
from tests.support.gateway import (
    PASSWORD,
    Gateway,
    gateway,
    next_traffic,
    receive,
    running,
    send,
    subscribe,
)
from tests.support.timing import seconds

INTERVAL: Final = 0.2
SECRET: Final = "a-long-enough-test-secret-for-hs256!"

# Two customers whose names differ by one byte: 0xF1 is "ñ" in latin-1 and not UTF-8.
NUNEZ: Final = NamedInterface("<pppoe-nuñez>", "pppoe-in", number=4)
NUEZ: Final = NamedInterface("<pppoe-nuez>", "pppoe-in", number=5)
NUNEZ_SHOWN: Final = f"<pppoe-nu{MARK}\\xf1ez>"
"""How the gateway shows *4's name when the router is set to UTF-8 and writes latin-1."""

Message = dict[str, Any]


def router(*named: NamedInterface, encoding: str = "utf-8") -> RouterEmulator:
    """A router with ether1 (``*1``), ``lo`` (``*2``) and ``named``, names sent in ``encoding``."""
    config = DeviceConfig(
        ethernet=1, sfp=0, bridge=False, non_ascii_name=False, encoding=encoding, named=named
    )
    return RouterEmulator(Device(config), password=PASSWORD)


def settings(emu: RouterEmulator, *, jwt_auth: bool = False, encoding: str = "") -> Settings:
    """The gateway in front of ``emu`` as router ``core`` (encoding: the default utf-8)."""
    return settings_from_dict(
        {
            "server": {"host": "127.0.0.1", "port": 0},
            "auth": {"mode": "jwt", "jwt_secret_env": "SECRET"} if jwt_auth else {},
            "poll": {"interval": INTERVAL, "timeout": 1.0, "linger": 2.0},
            "routers": [
                {
                    "id": "core",
                    "host": "127.0.0.1",
                    "port": emu.port,
                    "username": "admin",
                    "password": PASSWORD,
                    **({"encoding": encoding} if encoding else {}),
                }
            ],
        },
        source="test",
        env={"SECRET": SECRET},
    )


def token(interfaces: Mapping[str, list[Any]]) -> str:
    claims = {
        "sub": "customer",
        "exp": int(time.time() + 300),
        "routers": ["core"],
        "interfaces": interfaces,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


@contextlib.asynccontextmanager
async def serving(emu: RouterEmulator, *, jwt_auth: bool = False) -> AsyncIterator[Gateway]:
    async with running(emu), gateway(settings(emu, jwt_auth=jwt_auth)) as gw:
        yield gw


def names(frame: Message) -> dict[str, str]:
    """``.id`` -> name of every interface in a traffic frame."""
    return {i["id"]: i["name"] for i in frame["interfaces"]}


async def fill_ring(gw: Gateway, frames: int, **connect: Any) -> None:
    """Watch the router (unfiltered) until its history ring holds ``frames`` frames."""
    ws = await gw.viewer(**connect)
    await subscribe(ws, "core")
    first = (await next_traffic(ws, seconds(5)))["seq"]
    while (await next_traffic(ws, seconds(5)))["seq"] < first + frames - 1:
        pass
    await ws.close()


# -- item: bytes that do not decode ---------------------------------------------------------


async def test_names_in_another_code_page_stay_distinct_and_are_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A latin-1 name on a router set to UTF-8 reaches viewers visibly escaped, never as the
    name of the customer next to it, and the log says once which router, row and setting; set
    to latin-1, the name reads as written and nothing is logged."""
    caplog.set_level(logging.WARNING, logger="gateway")
    emu = router(NUNEZ, NUEZ, encoding="latin-1")
    async with serving(emu) as gw:
        ws = await gw.viewer()
        await subscribe(ws, "core")
        for _ in range(4):
            shown = names(await next_traffic(ws, seconds(5)))
            assert shown["*4"] == NUNEZ_SHOWN
            assert shown["*5"] == "<pppoe-nuez>"
        await ws.close()
    warnings = [r.getMessage() for r in caplog.records if "decode" in r.getMessage()]
    assert len(warnings) == 1, warnings
    (warning,) = warnings
    for part in ("core", "*4", NUNEZ_SHOWN, "utf-8", "encoding"):
        assert part in warning, (part, warning)

    caplog.clear()
    async with running(emu), gateway(settings(emu, encoding="latin-1")) as gw:
        ws = await gw.viewer()
        await subscribe(ws, "core")
        shown = names(await next_traffic(ws, seconds(5)))
        assert (shown["*4"], shown["*5"]) == ("<pppoe-nuñez>", "<pppoe-nuez>")
        await ws.close()
    assert not [r for r in caplog.records if "decode" in r.getMessage()]


@pytest.mark.parametrize(
    "scope",
    [["<pppoe-nuez>"], [{"exact": "<pppoe-nuez>"}]],
    ids=["glob", "exact"],
)
async def test_a_token_for_one_customer_never_shows_the_look_alike(scope: list[Any]) -> None:
    """A token scoped to <pppoe-nuez> receives *5 only: live frames, history and REST alike,
    although the router also has <pppoe-nu\\xf1ez> and its encoding setting is wrong."""
    emu = router(NUNEZ, NUEZ, encoding="latin-1")
    customer = token({"core": scope})
    async with serving(emu, jwt_auth=True) as gw:
        await fill_ring(gw, 3, params={"token": token({})})
        ws = await gw.viewer(params={"token": customer})
        _, history = await subscribe(ws, "core")
        assert len(history["frames"]) >= 3
        for old in history["frames"]:
            assert names(old) == {"*5": "<pppoe-nuez>"}
        for _ in range(3):
            assert names(await next_traffic(ws, seconds(5))) == {"*5": "<pppoe-nuez>"}
        await ws.close()
        bearer = {"Authorization": f"Bearer {customer}"}
        async with gw.http.get(gw.url("/api/routers/core/traffic"), headers=bearer) as response:
            assert response.status == 200
            assert names(await response.json()) == {"*5": "<pppoe-nuez>"}


# Two customers whose names cp932 decodes to the same text: ED 40 and FA 5C are both 纊 (an
# NEC-selected and an IBM extension of the same character); 纊 encodes back to ED 40.
KANJI_NEC: Final = NamedInterface("<pppoe-\u7e8a>", "pppoe-in", number=4)
KANJI_IBM: Final = NamedInterface("<pppoe-\udcfa\\>", "pppoe-in", number=5)  # FA 5C
KANJI_IBM_SHOWN: Final = f"<pppoe-{MARK}\\xfa{MARK}\\x5c>"


async def test_names_that_decode_alike_stay_two_customers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With encoding = "cp932", <pppoe-纊> as ED 40 and as FA 5C reach viewers as two names, a
    token for <pppoe-纊> sees only the interface whose bytes are that name, live, in history
    and over REST, and the log says once which row is shown escaped."""
    caplog.set_level(logging.WARNING, logger="gateway")
    emu = router(KANJI_NEC, KANJI_IBM, encoding="cp932")
    customer = token({"core": [{"exact": "<pppoe-\u7e8a>"}]})
    async with running(emu), gateway(settings(emu, jwt_auth=True, encoding="cp932")) as gw:
        await fill_ring(gw, 3, params={"token": token({})})
        everyone = await gw.viewer(params={"token": token({})})
        await subscribe(everyone, "core")
        shown = names(await next_traffic(everyone, seconds(5)))
        assert (shown["*4"], shown["*5"]) == ("<pppoe-\u7e8a>", KANJI_IBM_SHOWN)
        await everyone.close()
        ws = await gw.viewer(params={"token": customer})
        _, history = await subscribe(ws, "core")
        assert len(history["frames"]) >= 3
        for old in history["frames"]:
            assert names(old) == {"*4": "<pppoe-\u7e8a>"}
        for _ in range(3):
            assert names(await next_traffic(ws, seconds(5))) == {"*4": "<pppoe-\u7e8a>"}
        await ws.close()
        bearer = {"Authorization": f"Bearer {customer}"}
        async with gw.http.get(gw.url("/api/routers/core/traffic"), headers=bearer) as response:
            assert response.status == 200
            assert names(await response.json()) == {"*4": "<pppoe-\u7e8a>"}
    warnings = [r.getMessage() for r in caplog.records if "decode" in r.getMessage()]
    assert len(warnings) == 1, warnings
    for part in ("core", "*5", KANJI_IBM_SHOWN, "cp932", "encoding"):
        assert part in warnings[0], (part, warnings[0])


# -- item: text stays text --------------------------------------------------------------------

# Names (and types) that look like something other than text to a client that guesses types.
LOOKALIKES: Final = (
    "yes",
    "no",
    "true",
    "false",
    "TRUE",
    "0",
    "007",
    "-1",
    "+5",
    "1e3",
    "1_000",
    "0x10",
    "inf",
    "NaN",
    "None",
    "null",
    " x ",
    " ",
    "\u00a0",
    "\u200b",
    "ether-café",
    "ether-東京",
    "=a=b",
)


async def test_text_the_router_sends_reaches_viewers_unchanged() -> None:
    """Names and types that look like booleans, numbers or blanks are shown as the router wrote
    them, never as True, 7 or a guess."""
    named = [NamedInterface(name, type=name, number=16 + n) for n, name in enumerate(LOOKALIKES)]
    async with serving(router(*named)) as gw:
        ws = await gw.viewer()
        await subscribe(ws, "core")
        frame = await next_traffic(ws, seconds(5))
        await ws.close()
    rows = {i["id"]: (i["name"], i["type"]) for i in frame["interfaces"]}
    for spec in named:
        assert rows[f"*{spec.number:X}"] == (spec.name, spec.name)


# -- item: a picked name matches literally --------------------------------------------------

# Characters RouterOS allows in a name that mean something to a glob, a shell or JSON, plus
# non-ASCII text, each beside a name its glob reading would match instead.
PICKED: Final = (
    "ether1 [WAN]",
    "ether1 W",
    "a*b",
    "aXb",
    "a?b",
    "a\\b",
    "vlan[!1]",
    "vlan2",
    "<cust>",
    '"quoted"',
    "it's",
    "[",
    "ñandú",
    "*",
)


async def test_an_exact_name_selects_that_interface_only_live_and_in_history() -> None:
    """Subscribing to {"exact": name} gives that interface alone, with its history, whatever
    characters the name holds; the same name as a glob would not."""
    named = [NamedInterface(name, number=16 + n) for n, name in enumerate(PICKED)]
    async with serving(router(*named)) as gw:
        await fill_ring(gw, 2)
        viewers = []
        for name in PICKED:
            ws = await gw.viewer()
            _, history = await subscribe(ws, "core", interfaces=[{"exact": name}])
            assert len(history["frames"]) >= 2, name
            for old in history["frames"]:
                assert [i["name"] for i in old["interfaces"]] == [name]
            viewers.append((name, ws))
        for name, ws in viewers:
            frame = await next_traffic(ws, seconds(5))
            assert [i["name"] for i in frame["interfaces"]] == [name]
            await ws.close()
        # The fault this fixes: the bracketed name used as a glob picks another interface.
        ws = await gw.viewer()
        _, history = await subscribe(ws, "core", interfaces=["ether1 [WAN]"])
        assert {i["name"] for i in history["frames"][-1]["interfaces"]} == {"ether1 W"}
        await ws.close()


async def test_a_token_with_an_exact_name_shows_only_that_interface() -> None:
    """A customer token naming ``<cust[1]>`` exactly shows that interface and not ``<cust1>``."""
    named = [NamedInterface("<cust[1]>", number=16), NamedInterface("<cust1>", number=17)]
    async with serving(router(*named), jwt_auth=True) as gw:
        customer = token({"core": [{"exact": "<cust[1]>"}]})
        ws = await gw.viewer(params={"token": customer})
        await subscribe(ws, "core")
        assert names(await next_traffic(ws, seconds(5))) == {"*10": "<cust[1]>"}
        await ws.close()


async def test_a_bad_exact_entry_is_refused_saying_why() -> None:
    """A subscribe whose interfaces list holds a malformed entry gets bad_request naming it."""
    async with serving(router()) as gw:
        ws = await gw.viewer()
        await send(ws, {"type": "subscribe", "router": "core", "interfaces": [{"exact": 1}]})
        error = await receive(ws)
        assert error["code"] == "bad_request"
        assert '"interfaces"' in error["message"]
        assert "exact" in error["message"]
        await ws.close()


async def test_rest_snapshot_keeps_router_text() -> None:
    """The REST snapshot shows the same exact names as the websocket."""
    named = [NamedInterface(name, number=16 + n) for n, name in enumerate(("007", "true"))]
    async with serving(router(*named)) as gw:
        await fill_ring(gw, 1)
        status, body = await gw.get_json("/api/routers/core/traffic")
        assert status == 200, body
        assert names(body)["*10"] == "007"
        assert names(body)["*11"] == "true"


async def test_the_router_interfaces_setting_takes_exact_names(tmp_path: Path) -> None:
    """A router configured with interfaces = [{exact = "ether1 [WAN]"}] publishes that
    interface and not "ether1 W", which the same name written as a glob would publish."""
    emu = router(NamedInterface("ether1 [WAN]", number=16), NamedInterface("ether1 W", number=17))
    async with running(emu):
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[server]
host = "127.0.0.1"
port = 0

[poll]
interval = {INTERVAL}

[[routers]]
id = "core"
host = "127.0.0.1"
port = {emu.port}
username = "admin"
password = "{PASSWORD}"
interfaces = [{{exact = "ether1 [WAN]"}}, "lo*"]
""",
            encoding="utf-8",
        )
        async with gateway(load_settings(config, env={})) as gw:
            ws = await gw.viewer()
            await subscribe(ws, "core")
            assert names(await next_traffic(ws, seconds(5))) == {"*10": "ether1 [WAN]", "*2": "lo"}
            await ws.close()
