"""The gateway logging in to routers of every login generation, with passwords beyond ASCII."""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import pytest

from gateway.config import LoginMethod, Settings, settings_from_dict
from gateway.emulator.device import Device, sized_config
from gateway.emulator.server import RouterEmulator
from gateway.emulator.version import Version
from tests.support.gateway import Gateway, gateway, running
from tests.support.timing import eventually, seconds

NON_ASCII: Final = {"utf-8": "p\u00e4sswort", "latin-1": "Kennwört-7", "cp1251": "пароль-7"}


def settings_for(
    emu: RouterEmulator, password: str, encoding: str, login_method: LoginMethod = "plain"
) -> Settings:
    return settings_from_dict(
        {
            "server": {"host": "127.0.0.1", "port": 0},
            "poll": {"interval": 0.3, "timeout": 1.0},
            "routers": [
                {
                    "id": "r1",
                    "host": "127.0.0.1",
                    "port": emu.port,
                    "username": "admin",
                    "password": password,
                    "encoding": encoding,
                    "login_method": login_method,
                }
            ],
        },
        source="test",
    )


async def router_entry(gw: Gateway) -> dict[str, Any]:
    """The router's entry in ``/api/routers`` (read after a traffic read made demand)."""
    status, body = await gw.get_json("/api/routers")
    assert status == 200
    [entry] = body["routers"]
    return dict(entry)


async def wait_for_state(gw: Gateway, state: str) -> dict[str, Any]:
    """Read the traffic snapshot (demand) until the router reaches ``state``; its entry."""
    entry: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal entry
        await gw.get_json("/api/routers/r1/traffic")
        entry = await router_entry(gw)
        return bool(entry["state"] == state)

    await eventually(reached, timeout=seconds(10), interval=0.05, message=f"router {state}")
    return entry


@pytest.mark.parametrize(
    ("version", "encoding", "login_method"),
    [
        pytest.param(Version(6, 42, 12), "utf-8", "plain", id="6.42.12-utf-8"),
        pytest.param(Version(6, 42, 12), "latin-1", "plain", id="6.42.12-latin-1"),
        pytest.param(Version(6, 42, 12), "cp1251", "plain", id="6.42.12-cp1251"),
        pytest.param(Version(6, 42, 12), "utf-8", "token", id="6.42.12-utf-8-token"),
        pytest.param(Version(7, 18, 2), "cp1251", "plain", id="7.18.2-cp1251"),
    ],
)
async def test_non_ascii_password_logs_in(
    version: Version, encoding: str, login_method: LoginMethod
) -> None:
    """A non-ASCII password logs in to old and new routers alike: the challenge is answered
    with the password in the router's encoding, and the router comes up with live frames."""
    password = NON_ASCII[encoding]
    device = Device(sized_config(8, version=version, encoding=encoding))
    emu = RouterEmulator(device, password=password)
    async with running(emu), gateway(settings_for(emu, password, encoding, login_method)) as gw:
        entry = await wait_for_state(gw, "up")
        assert entry["last_error"] is None
        status, frame = await gw.get_json("/api/routers/r1/traffic")
        assert status == 200
        assert len(frame["interfaces"]) == len(device.interfaces)
    assert (emu.logins, emu.login_failures) == (1, 0)
    assert emu.commands["/login"] == (1 if version.plain_login else 2)


async def test_password_the_encoding_cannot_carry_is_reported_without_its_text() -> None:
    """Settings built around the config check, with a password the router's encoding cannot
    carry: the router is down with an error naming the encoding and no piece of the password,
    and the router never saw a connection (nothing to lock the account with)."""
    password = NON_ASCII["latin-1"]
    device = Device(sized_config(8, version=Version(6, 42, 12), encoding="latin-1"))
    emu = RouterEmulator(device, password=password)
    async with running(emu):
        settings = settings_for(emu, password, "latin-1")
        ascii_router = dataclasses.replace(settings.routers[0], encoding="ascii")
        async with gateway(dataclasses.replace(settings, routers=(ascii_router,))) as gw:
            entry = await wait_for_state(gw, "down")
    error = entry["last_error"]
    assert "encoding 'ascii'" in error
    pieces = {password[i : i + 4] for i in range(len(password) - 3)}
    for piece in (*pieces, "ö", "\\xf6", "xf6", "position"):
        assert piece not in error
    assert emu.connections_total == 0


async def test_the_challenge_login_refused_by_6_45_1_and_later_says_so() -> None:
    """login_method = "token" against 6.45.1 or later (which refuse the challenge login) shows
    the router's refusal with a hint to use the default login method."""
    device = Device(sized_config(8, version=Version(6, 49, 10)))
    emu = RouterEmulator(device, password="right-password")
    async with running(emu), gateway(settings_for(emu, "right-password", "utf-8", "token")) as gw:
        entry = await wait_for_state(gw, "down")
    error = entry["last_error"]
    assert "invalid user name or password" in error
    assert 'login_method = "token"' in error
    assert "6.45.1" in error
    assert "right-password" not in error
