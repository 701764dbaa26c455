"""Every fault the emulator injects, as each of three real client libraries experiences it.

The same scenario runs against librouteros ``connect``, librouteros ``async_connect`` and the
independent ``routeros_api`` library; each ``Kind`` says which exception that library raises for
a timeout, a closed connection, a refused connection, a ``!trap`` and a ``!fatal``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from librouteros.exceptions import ConnectionClosed, FatalError, TrapError
from routeros_api.exceptions import (
    RouterOsApiCommunicationError,
    RouterOsApiConnectionError,
    RouterOsApiParsingError,
)

from gateway.emulator.device import Device
from gateway.emulator.interface import Interface
from gateway.emulator.server import (
    FAULT_FATAL,
    FAULT_TRAP,
    OVER_LIMIT_FATAL,
    Fault,
    OverLimit,
    RouterEmulator,
)
from gateway.emulator.session import BAD_LOGIN
from tests.support.emulators import (
    CLIENT_TIMEOUT,
    DEADLINE,
    Clients,
    Routers,
    Row,
    in_thread,
    rows_of,
)
from tests.support.timing import eventually, seconds, within

Errors = type[BaseException] | tuple[type[BaseException], ...]
Print = Callable[[str], Awaitable[list[Row]]]
"""Print one menu (``/interface``) over a logged-in connection."""


async def _librouteros_sync(
    clients: Clients, router: RouterEmulator, password: str | None
) -> Print:
    api = await clients.connect(router, password=password)

    async def print_(path: str) -> list[Row]:
        return await in_thread(lambda: list(api(f"{path}/print")))

    return print_


async def _librouteros_async(
    clients: Clients, router: RouterEmulator, password: str | None
) -> Print:
    api = await clients.async_connect(router, password=password)

    async def print_(path: str) -> list[Row]:
        return await rows_of(api(f"{path}/print"))

    return print_


async def _routeros_api(clients: Clients, router: RouterEmulator, password: str | None) -> Print:
    api = await clients.routeros_api(router, password=password)

    async def print_(path: str) -> list[Row]:
        return await in_thread(lambda: list(api.get_resource(path).get()))

    return print_


@dataclass(frozen=True, slots=True)
class Kind:
    """One client library: how it logs in, and what each misbehaviour raises in its user's code."""

    name: str
    open: Callable[[Clients, RouterEmulator, str | None], Awaitable[Print]]
    timeout: Errors
    closed: Errors
    refused: Errors
    trap: Errors
    fatal: Errors
    # Text in str(exception) that tells a timeout or a refusal apart from other errors, where
    # the library uses one exception class for all of them.
    timeout_text: str | None = None
    refused_text: str | None = None

    async def login(
        self, clients: Clients, router: RouterEmulator, *, password: str | None = None
    ) -> Print:
        return await self.open(clients, router, password)


_LIBROUTEROS_CLOSED = (ConnectionClosed, ConnectionResetError, BrokenPipeError)

KINDS = [
    Kind(
        "librouteros-connect",
        _librouteros_sync,
        timeout=TimeoutError,
        closed=_LIBROUTEROS_CLOSED,
        refused=ConnectionRefusedError,
        trap=TrapError,
        fatal=FatalError,
    ),
    Kind(
        "librouteros-async_connect",
        _librouteros_async,
        timeout=TimeoutError,
        closed=_LIBROUTEROS_CLOSED,
        refused=ConnectionRefusedError,
        trap=TrapError,
        fatal=FatalError,
    ),
    Kind(
        "routeros_api",
        _routeros_api,
        # routeros_api wraps every socket error, a timeout included, in one exception class.
        timeout=RouterOsApiConnectionError,
        timeout_text="timed out",
        closed=RouterOsApiConnectionError,
        refused=RouterOsApiConnectionError,
        refused_text="Connection refused",
        trap=RouterOsApiCommunicationError,
        # It cannot parse the bare reason word after !fatal, so a fatal surfaces as a parse error
        # that still carries the router's reason.
        fatal=RouterOsApiParsingError,
    ),
]


@pytest.fixture(params=KINDS, ids=lambda kind: kind.name)
def kind(request: pytest.FixtureRequest) -> Kind:
    """Each of the three client libraries in turn."""
    result: Kind = request.param
    return result


class Stopwatch:
    """Seconds since creation, to tell a client's own timeout from an error noticed at once."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start


def assert_timed_out(watch: Stopwatch) -> None:
    # The client's own timeout fired: not earlier, and well before the test's deadline would.
    assert CLIENT_TIMEOUT * 0.9 <= watch.elapsed < DEADLINE * 0.9


def assert_at_once(watch: Stopwatch) -> None:
    # The error was the router's doing, seen without waiting for the client's timeout.
    assert watch.elapsed < CLIENT_TIMEOUT * 0.9


async def test_hang_times_out(kind: Kind, clients: Clients, router: RouterEmulator) -> None:
    """A hanging router fails the next command with the client's timeout, and nothing sooner."""
    print_ = await kind.login(clients, router)
    await router.set_fault(Fault("hang"))
    watch = Stopwatch()
    with pytest.raises(kind.timeout, match=kind.timeout_text):
        await print_("/system/identity")
    assert_timed_out(watch)
    await router.clear_fault()
    fresh = await kind.login(clients, router)
    assert [row["name"] for row in await fresh("/system/identity")] == ["MikroTik"]


async def test_slow_beyond_the_client_timeout_times_out(
    kind: Kind, clients: Clients, router: RouterEmulator
) -> None:
    """Replies delayed past the client's timeout end in that timeout."""
    print_ = await kind.login(clients, router)
    await router.set_fault(Fault("slow", delay=CLIENT_TIMEOUT * 2))
    watch = Stopwatch()
    with pytest.raises(kind.timeout, match=kind.timeout_text):
        await print_("/interface")
    assert_timed_out(watch)


async def test_slow_within_the_client_timeout_succeeds(
    kind: Kind, clients: Clients, router: RouterEmulator
) -> None:
    """Replies delayed less than the client's timeout arrive whole, just late."""
    print_ = await kind.login(clients, router)
    delay = CLIENT_TIMEOUT / 5
    await router.set_fault(Fault("slow", delay=delay))
    watch = Stopwatch()
    rows = await print_("/interface")
    assert watch.elapsed >= delay * 0.9
    assert len(rows) == len(router.device.interfaces)


async def test_drop_mid_reply_closes_the_connection(
    kind: Kind, clients: Clients, router: RouterEmulator
) -> None:
    """A reset in the middle of a reply is a closed connection for the client, seen at once."""
    print_ = await kind.login(clients, router)
    await router.set_fault(Fault("drop"))
    watch = Stopwatch()
    with pytest.raises(kind.closed):
        await print_("/interface")
    assert_at_once(watch)
    await router.clear_fault()
    fresh = await kind.login(clients, router)
    assert len(await fresh("/interface")) == len(router.device.interfaces)


async def test_refuse_drops_sessions_and_refuses_connections(
    kind: Kind, clients: Clients, router: RouterEmulator
) -> None:
    """Refuse closes open sessions and refuses new connections until it is cleared."""
    print_ = await kind.login(clients, router)
    await router.set_fault(Fault("refuse"))
    watch = Stopwatch()
    with pytest.raises(kind.closed):
        await print_("/system/identity")
    with pytest.raises(kind.refused, match=kind.refused_text):
        await kind.login(clients, router)
    assert_at_once(watch)
    await router.clear_fault()
    fresh = await kind.login(clients, router)
    assert [row["name"] for row in await fresh("/system/identity")] == ["MikroTik"]


async def test_trap_hits_the_next_command_only(
    kind: Kind, clients: Clients, router: RouterEmulator
) -> None:
    """A trap fault fails the next command with the router's trap; the session then works on."""
    print_ = await kind.login(clients, router)
    await router.set_fault(Fault("trap"))
    with pytest.raises(kind.trap, match=re.escape(FAULT_TRAP)):
        await print_("/system/identity")
    assert [row["name"] for row in await print_("/system/identity")] == ["MikroTik"]
    assert router.fault.mode == "none"


async def test_fatal_ends_the_session(kind: Kind, clients: Clients, router: RouterEmulator) -> None:
    """A fatal fault answers the next command with !fatal and the router closes the session."""
    print_ = await kind.login(clients, router)
    await router.set_fault(Fault("fatal"))
    with pytest.raises(kind.fatal, match=re.escape(FAULT_FATAL)):
        await print_("/system/identity")
    await eventually(
        lambda: router.stats()["active_sessions"] == 0,
        timeout=seconds(2),
        message="the router closed the session",
    )
    fresh = await kind.login(clients, router)
    assert [row["name"] for row in await fresh("/system/identity")] == ["MikroTik"]


async def test_auth_fault_fails_logins_like_a_bad_password(
    kind: Kind, clients: Clients, router: RouterEmulator
) -> None:
    """With the auth fault on, the right password fails exactly as a wrong one does."""
    with pytest.raises(kind.trap, match=re.escape(BAD_LOGIN)):
        await kind.login(clients, router, password="wrong")
    await router.set_fault(Fault("auth"))
    with pytest.raises(kind.trap, match=re.escape(BAD_LOGIN)):
        await kind.login(clients, router)
    assert router.stats()["login_failures"] == 2
    await router.clear_fault()
    await kind.login(clients, router)
    assert router.stats()["logins"] == 1


@pytest.mark.parametrize("over_limit", ["close", "hang", "fatal"])
async def test_session_over_the_limit(
    kind: Kind, over_limit: OverLimit, clients: Clients, routers: Routers
) -> None:
    """The 21st session fails its login as configured; once a session ends, a new one gets in."""
    router = await routers.start(over_limit=over_limit)
    holders = [await clients.async_connect(router) for _ in range(20)]
    watch = Stopwatch()
    if over_limit == "close":
        with pytest.raises(kind.closed):
            await kind.login(clients, router)
        assert_at_once(watch)
    elif over_limit == "hang":
        with pytest.raises(kind.timeout, match=kind.timeout_text):
            await kind.login(clients, router)
        assert_timed_out(watch)
    else:
        with pytest.raises(kind.fatal, match=re.escape(OVER_LIMIT_FATAL)):
            await kind.login(clients, router)
        assert_at_once(watch)
    assert router.stats()["active_sessions"] == 20
    await holders[0].close()
    await eventually(
        lambda: router.stats()["active_sessions"] == 19,
        timeout=seconds(2),
        message="the router saw the session end",
    )
    print_ = await kind.login(clients, router)
    assert [row["name"] for row in await print_("/system/identity")] == ["MikroTik"]


async def test_timed_fault_clears_itself(clients: Clients, router: RouterEmulator) -> None:
    """A fault given a duration hits every command until it runs out, then clears by itself."""
    api = await clients.async_connect(router)
    await router.set_fault(Fault("trap", duration=seconds(1)))
    for _ in range(2):
        with pytest.raises(TrapError, match=re.escape(FAULT_TRAP)):
            await rows_of(api("/system/identity/print"))
    await eventually(
        lambda: router.fault.mode == "none", timeout=seconds(3), message="the fault expired"
    )
    assert await rows_of(api("/system/identity/print")) == [{"name": "MikroTik"}]


class BrokenDevice(Device):
    """A device whose rows raise while ``broken`` is set: a bug in the emulator's own code."""

    broken = False

    def interface_row(self, iface: Interface) -> dict[str, str]:
        if self.broken:
            raise KeyError("rx-byte")
        return super().interface_row(iface)

    def monitor_row(self, iface: Interface) -> dict[str, str]:
        if self.broken:
            raise KeyError("rx-bits-per-second")
        return super().monitor_row(iface)


def emulator_tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "gateway.emulator.server" and r.exc_info is not None
    ]


async def test_a_bug_in_a_reply_closes_that_connection_loudly(
    caplog: pytest.LogCaptureFixture, clients: Clients, routers: Routers
) -> None:
    """A bug while answering closes that one connection with its traceback logged; others go on."""
    router = await routers.start(device_type=BrokenDevice)
    device = router.device
    assert isinstance(device, BrokenDevice)
    api = await clients.async_connect(router)
    other = await clients.async_connect(router)
    device.broken = True
    with pytest.raises(ConnectionClosed):
        await rows_of(api("/interface/print"))
    [record] = emulator_tracebacks(caplog)
    assert "connection handler failed" in record.getMessage()
    device.broken = False
    assert await rows_of(other("/interface/print"))
    await eventually(
        lambda: router.stats()["active_sessions"] == 1,
        timeout=seconds(2),
        message="the broken connection is gone",
    )


async def test_a_bug_in_a_stream_closes_that_connection_loudly(
    caplog: pytest.LogCaptureFixture, clients: Clients, routers: Routers
) -> None:
    """A streaming reply that hits a bug ends its connection at once, never leaving it hanging."""
    router = await routers.start(device_type=BrokenDevice)
    device = router.device
    assert isinstance(device, BrokenDevice)
    api = await clients.async_connect(router, timeout=DEADLINE)
    protocol = api.protocol
    await protocol.writeSentence("/interface/monitor-traffic", "=interface=ether1", "=interval=0.1")
    reply, _ = await within(protocol.readSentence(), DEADLINE)
    assert reply == "!re"
    device.broken = True
    watch = Stopwatch()

    async def read_until_closed() -> None:
        while True:
            await within(protocol.readSentence(), DEADLINE)

    with pytest.raises(ConnectionClosed):
        await read_until_closed()
    assert_at_once(watch)
    [record] = emulator_tracebacks(caplog)
    assert "streaming reply failed" in record.getMessage()
    await eventually(
        lambda: router.stats()["active_sessions"] == 0,
        timeout=seconds(2),
        message="the broken connection is gone",
    )
