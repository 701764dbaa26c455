"""What the router's state looks like to a real client: counters, churn, reboot, resets, versions.

The device runs on the test's fake clock, so every counter value here is exact.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from librouteros.exceptions import ConnectionClosed, TrapError
from librouteros.query import Key

from gateway.emulator.device import sized_config
from gateway.emulator.server import RouterEmulator
from gateway.emulator.session import NO_SUCH_INTERFACE
from gateway.emulator.version import Version
from tests.support.emulators import Clients, FakeClock, Routers, Row, in_thread, rows_of

COUNTERS = ("name", ".id", "rx-byte", "tx-byte", "rx-packet", "tx-packet")


async def _by_name(api: Any, *keys: str) -> dict[str, Row]:
    rows = await rows_of(api.path("/interface").select(*(Key(k) for k in ("name", *keys))))
    return {str(row["name"]): row for row in rows}


async def _uptime(api: Any) -> str:
    [resource] = await rows_of(api("/system/resource/print"))
    return str(resource["uptime"])


async def test_counters_advance_between_prints(
    clients: Clients, router: RouterEmulator, fake_clock: FakeClock
) -> None:
    """Counters grow by exactly rate x elapsed time between two prints, and so does uptime."""
    router.device.set_traffic("ether1", 8_000_000, 2_000_000)
    api = await clients.async_connect(router)
    before = (await _by_name(api, *COUNTERS))["ether1"]
    fake_clock.advance(10)
    after = (await _by_name(api, *COUNTERS))["ether1"]
    assert after["rx-byte"] - before["rx-byte"] == 10_000_000
    assert after["tx-byte"] - before["tx-byte"] == 2_500_000
    assert after["rx-packet"] - before["rx-packet"] == 10_000_000 // 900
    assert after["tx-packet"] - before["tx-packet"] == 2_500_000 // 420
    assert await _uptime(api) == "10s"
    fake_clock.advance(3600 * 26 + 61)
    assert await _uptime(api) == "1d2h1m11s"


async def test_pppoe_customer_drops_and_redials(
    clients: Clients, routers: Routers, fake_clock: FakeClock
) -> None:
    """A customer who hangs up vanishes, then comes back with a new .id and counters from 0."""
    router = await routers.start(sized_config(8, pppoe=2, pppoe_session=0))
    api = await clients.async_connect(router)
    name = "<pppoe-user0001>"
    router.device.set_traffic(name, 800_000, 80_000)
    fake_clock.advance(60)
    first = (await _by_name(api, *COUNTERS))[name]
    assert first["rx-byte"] == 6_000_000
    assert router.device.drop_pppoe("user0001")
    assert name not in await _by_name(api)
    with pytest.raises(TrapError, match=re.escape(NO_SUCH_INTERFACE)):
        await rows_of(api("/interface/monitor-traffic", interface=name, once=True))
    fake_clock.advance(router.device.config.pppoe_redial)
    again = (await _by_name(api, *COUNTERS, "type", "dynamic"))[name]
    assert again[".id"] != first[".id"]
    assert (again["rx-byte"], again["tx-byte"], again["type"], again["dynamic"]) == (
        0,
        0,
        "pppoe-in",
        True,
    )
    assert "<pppoe-user0002>" in await _by_name(api)


async def test_pppoe_sessions_churn_by_themselves(
    clients: Clients, routers: Routers, fake_clock: FakeClock
) -> None:
    """With short sessions, every customer hangs up and later dials in again under a new .id."""
    router = await routers.start(sized_config(8, pppoe=3, pppoe_session=30))
    api = await clients.async_connect(router)
    query = api.path("/interface").select(Key(".id"), Key("name"), Key("rx-byte"))
    dynamic = Key("type") == "pppoe-in"
    online = await rows_of(query.where(dynamic))
    assert len(online) == 3
    fake_clock.advance(1000)
    assert await rows_of(query.where(Key("type") == "pppoe-in")) == []
    fake_clock.advance(1000)
    redialled = await rows_of(query.where(Key("type") == "pppoe-in"))
    assert sorted(row["name"] for row in redialled) == sorted(row["name"] for row in online)
    assert {row[".id"] for row in redialled}.isdisjoint(row[".id"] for row in online)
    assert all(row["rx-byte"] == 0 for row in redialled)


async def test_reboot_drops_sessions_and_restarts_counters(
    clients: Clients, routers: Routers, fake_clock: FakeClock
) -> None:
    """A reboot drops the connection; afterwards counters, uptime and link times restart."""
    router = await routers.start(sized_config(8, pppoe=1, pppoe_session=0))
    router.device.set_traffic("ether1", 8_000_000, 2_000_000)
    api = await clients.connect(router)
    fake_clock.advance(3600)
    before = await in_thread(lambda: list(api("/interface/print")))
    assert before[0]["rx-byte"] == 3_600_000_000
    assert before[0]["last-link-up-time"] == "2024-01-02 10:00:00"
    await router.reboot()
    with pytest.raises((ConnectionClosed, ConnectionResetError, BrokenPipeError)):
        await in_thread(lambda: list(api("/interface/print")))
    fresh = await clients.async_connect(router)
    after = await rows_of(fresh("/interface/print"))
    assert after[0]["rx-byte"] == 0
    assert after[0]["last-link-up-time"] == "2024-01-02 11:00:00"
    assert await _uptime(fresh) == "0s"
    pppoe = [row for row in after if row["name"] == "<pppoe-user0001>"]
    assert pppoe[0][".id"] != before[-1][".id"]


async def test_reset_counters(
    clients: Clients, router: RouterEmulator, fake_clock: FakeClock
) -> None:
    """Counters go back to 0: one interface by API command, all by the API or the control."""
    api = await clients.async_connect(router)
    router.device.set_traffic("ether1", 8_000_000, 2_000_000)
    router.device.set_traffic("sfp-sfpplus1", 8_000_000, 2_000_000)
    fake_clock.advance(5)
    assert await rows_of(api("/interface/reset-counters", numbers="ether1")) == []
    rows = await _by_name(api, *COUNTERS)
    assert rows["ether1"]["rx-byte"] == 0
    assert rows["sfp-sfpplus1"]["rx-byte"] == 5_000_000
    await rows_of(api("/interface/reset-counters-all"))
    assert {row["rx-byte"] for row in (await _by_name(api, *COUNTERS)).values()} == {0}
    fake_clock.advance(5)
    router.reset_counters()
    assert {row["tx-byte"] for row in (await _by_name(api, *COUNTERS)).values()} == {0}


async def test_disabled_interface(clients: Clients, router: RouterEmulator) -> None:
    """A disabled interface prints disabled and not running, and monitors at zero."""
    router.device.set_traffic("ether1", 8_000_000, 2_000_000)
    router.device.set_disabled("ether1", True)
    api = await clients.async_connect(router)
    row = (await _by_name(api, "disabled", "running"))["ether1"]
    assert (row["disabled"], row["running"]) == (True, False)
    [rates] = await rows_of(api("/interface/monitor-traffic", interface="ether1", once=True))
    assert rates["rx-bits-per-second"] == rates["tx-bits-per-second"] == 0


@pytest.mark.parametrize(
    ("version", "has_lo", "date", "version_text", "build_time"),
    [
        pytest.param(
            Version(6, 49, 10),
            False,
            "jan/02/2024 10:00:00",
            "6.49.10 (long-term)",
            "Feb/08/2021 12:48:33",
            id="6.49.10",
        ),
        pytest.param(
            Version(7, 9, 2),
            True,
            "jan/02/2024 10:00:00",
            "7.9.2 (stable)",
            "Nov/14/2023 22:13:20",
            id="7.9.2",
        ),
        pytest.param(
            Version(7, 18, 2),
            True,
            "2024-01-02 10:00:00",
            "7.18.2 (stable)",
            "2023-11-14 22:13:20",
            id="7.18.2",
        ),
    ],
)
async def test_version_persona(
    clients: Clients,
    routers: Routers,
    version: Version,
    has_lo: bool,
    date: str,
    version_text: str,
    build_time: str,
) -> None:
    """Each version prints its own way: the lo row only on v7, old dates before 7.10."""
    router = await routers.start(sized_config(8, version=version))
    api = await clients.async_connect(router)
    rows = await _by_name(api, "type", "last-link-up-time")
    assert ("lo" in rows) is has_lo
    assert len(rows) == 8 + has_lo
    assert rows["ether1"]["last-link-up-time"] == date
    [resource] = await rows_of(api("/system/resource/print"))
    assert resource["version"] == version_text
    assert resource["build-time"] == build_time
    assert ("factory-software" in resource) is (version.major == 7)


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "ascii"])
@pytest.mark.parametrize("interfaces", [4, 8])
async def test_sized_config_gives_exactly_that_many_interfaces(
    clients: Clients, routers: Routers, encoding: str, interfaces: int
) -> None:
    """``sized_config(n)`` prints n static rows (plus lo), whatever the name encoding."""
    router = await routers.start(sized_config(interfaces, encoding=encoding))
    api = await clients.async_connect(router)
    rows = await _by_name(api, "type")
    assert len(rows) == interfaces + 1
    assert rows["lo"]["type"] == "loopback"


async def test_sized_config_without_a_non_ascii_name(clients: Clients, routers: Routers) -> None:
    """``non_ascii_name=False`` leaves the non-ASCII row out at any size."""
    for interfaces in (4, 8):
        router = await routers.start(sized_config(interfaces, non_ascii_name=False))
        api = await clients.async_connect(router, encoding="utf-8")
        names = list(await _by_name(api))
        assert len(names) == interfaces + 1
        assert all(name.isascii() for name in names)
