"""``gateway emulate`` as a real process: it serves real clients and exits cleanly on SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import librouteros
import pytest
from librouteros.exceptions import FatalError, TrapError
from librouteros.login import async_token

from gateway import process
from gateway.cli import build_parser, emulated_config, login_methods
from gateway.config import settings_from_dict
from gateway.emulator.device import Device
from gateway.emulator.server import OVER_LIMIT_FATAL
from gateway.emulator.tls import make_certificate
from gateway.emulator.version import Version
from gateway.routeros import RouterClient
from tests.support.emulators import CLIENT_TIMEOUT, DEADLINE, rows_of
from tests.support.timing import seconds, within

# Starting Python and importing aiohttp is the slow part; allow for a loaded machine.
STARTUP = seconds(15)


@dataclass
class Emulated:
    """A running ``gateway emulate`` process, the API port it printed, and its first line."""

    child: process.Child
    port: int
    banner: str
    # How many stdout lines line() has handed out (the banner is the first).
    _read: int = 1

    async def line(self) -> str:
        """The next line it prints."""
        await self.child.expect("", STARTUP, after=self._read)
        self._read += 1
        return self.child.lines["stdout"][self._read - 1] + "\n"

    async def terminate(self) -> int:
        """Send SIGTERM and return the exit code, which must come within the deadline."""
        self.child.send_signal(signal.SIGTERM)
        return await self.child.wait(DEADLINE)


@contextlib.asynccontextmanager
async def emulate(*options: str) -> AsyncIterator[Emulated]:
    """Run ``python -m gateway emulate --port 0 ...``; kill it at the end if it still runs."""
    argv = process.command("emulate", "--port", "0", "--log-level", "WARNING", *options)
    async with process.started(argv, ready=process.EMULATOR_READY, deadline=STARTUP) as child:
        assert child.ready is not None
        yield Emulated(child, child.port, child.ready.string + "\n")


def _free_port() -> int:
    # The control port has to be chosen here: the CLI prints the number it was given, so with
    # 0 the test could not learn the port the kernel picked.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_serves_librouteros_and_exits_0_on_sigterm() -> None:
    """With ``--port 0`` it prints its port, serves librouteros, and exits 0 on SIGTERM."""
    async with emulate() as emulated:
        assert emulated.port != 0
        api = await within(
            librouteros.async_connect(
                "127.0.0.1", "admin", "admin", port=emulated.port, timeout=CLIENT_TIMEOUT
            ),
            DEADLINE,
        )
        try:
            assert await rows_of(api("/system/identity/print")) == [{"name": "MikroTik"}]
            assert len(await rows_of(api("/interface/print"))) == 9
        finally:
            await api.close()
        assert await emulated.terminate() == 0
        assert "Traceback" not in emulated.child.output("stderr")


async def test_options_take_effect() -> None:
    """Version, login mode, credentials, identity, sizes, encoding and limits all apply."""
    control_port = _free_port()
    async with emulate(
        "--ros-version=6.42.12",
        "--legacy-login",
        "--username=ops",
        "--password=s3cret",
        "--identity=edge-1",
        "--interfaces=12",
        "--pppoe=3",
        "--pppoe-session=0",
        "--encoding=latin-1",
        "--max-sessions=1",
        "--over-limit=fatal",
        "--seed=7",
        f"--control-port={control_port}",
    ) as emulated:
        assert f"127.0.0.1:{control_port}" in await emulated.line()
        api = await within(
            librouteros.async_connect(
                "127.0.0.1",
                "ops",
                "s3cret",
                port=emulated.port,
                timeout=CLIENT_TIMEOUT,
                login_method=async_token,
                encoding="latin-1",
            ),
            DEADLINE,
        )
        try:
            assert await rows_of(api("/system/identity/print")) == [{"name": "edge-1"}]
            names = [row["name"] for row in await rows_of(api("/interface/print"))]
            [resource] = await rows_of(api("/system/resource/print"))
            # The one session allowed is taken: a second connection gets !fatal at login.
            with pytest.raises(FatalError, match=OVER_LIMIT_FATAL):
                await within(
                    librouteros.async_connect(
                        "127.0.0.1",
                        "ops",
                        "s3cret",
                        port=emulated.port,
                        timeout=CLIENT_TIMEOUT,
                        login_method=async_token,
                    ),
                    DEADLINE,
                )
        finally:
            await api.close()
        assert len(names) == 15
        assert "lo" not in names
        assert "ether-café" in names
        assert sum(name.startswith("<pppoe-") for name in names) == 3
        assert resource["version"] == "6.42.12 (long-term)"
        timeout = aiohttp.ClientTimeout(total=DEADLINE)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(f"http://127.0.0.1:{control_port}/stats") as response,
        ):
            stats = await response.json()
        assert (stats["connections"], stats["logins"]) == (2, 1)
        assert await emulated.terminate() == 0


async def test_a_version_before_6_43_decides_the_login() -> None:
    """``--ros-version 6.42.12`` alone acts as a real 6.42: the plain login gets a challenge and
    no session (the next command is refused), and only the MD5 challenge login works."""
    async with emulate("--ros-version", "6.42.12") as emulated:
        plain = await within(
            librouteros.async_connect(
                "127.0.0.1", "admin", "admin", port=emulated.port, timeout=CLIENT_TIMEOUT
            ),
            DEADLINE,
        )
        try:
            with pytest.raises(TrapError, match=r"^not logged in$"):
                await rows_of(plain("/system/identity/print"))
        finally:
            await plain.close()
        legacy = await within(
            librouteros.async_connect(
                "127.0.0.1",
                "admin",
                "admin",
                port=emulated.port,
                timeout=CLIENT_TIMEOUT,
                login_method=async_token,
            ),
            DEADLINE,
        )
        try:
            assert await rows_of(legacy("/system/identity/print")) == [{"name": "MikroTik"}]
        finally:
            await legacy.close()
        assert await emulated.terminate() == 0


async def test_legacy_login_alone_acts_as_6_42() -> None:
    """``--legacy-login`` without a version acts as 6.42.12, the last release before 6.43."""
    async with emulate("--legacy-login") as emulated:
        api = await within(
            librouteros.async_connect(
                "127.0.0.1",
                "admin",
                "admin",
                port=emulated.port,
                timeout=CLIENT_TIMEOUT,
                login_method=async_token,
            ),
            DEADLINE,
        )
        try:
            [resource] = await rows_of(api("/system/resource/print"))
        finally:
            await api.close()
        assert resource["version"] == "6.42.12 (long-term)"
        assert await emulated.terminate() == 0


@pytest.mark.parametrize("version", ["6.43", "6.49.10", "7.18.2"])
async def test_legacy_login_contradicting_the_version_exits_2(version: str) -> None:
    """``--legacy-login`` with a 6.43+ version is refused with a message naming both options."""
    done = await process.run(
        process.command("emulate", "--legacy-login", "--ros-version", version), timeout=STARTUP
    )
    assert done.returncode == 2
    message = done.stderr
    assert f"--legacy-login contradicts --ros-version {version}" in message
    assert "6.42.12" in message
    assert done.stdout == ""


async def test_rejects_a_password_the_encoding_cannot_carry() -> None:
    """``--password`` must fit ``--encoding`` (the router stores it in that code page): exit 2
    with a message naming both options and none of the password."""
    done = await process.run(
        process.command("emulate", "--password", "Kennwört-7", "--encoding", "ascii"),
        timeout=STARTUP,
    )
    assert done.returncode == 2
    message = done.stderr
    assert "--password" in message
    assert "--encoding 'ascii'" in message
    assert "Kenn" not in message
    assert "ört" not in message


async def test_rejects_an_unknown_version() -> None:
    """An unusable ``--ros-version`` exits 2 with a message naming the option."""
    done = await process.run(process.command("emulate", "--ros-version", "5.20"), timeout=STARTUP)
    assert done.returncode == 2
    assert "--ros-version" in done.stderr
    assert "6.x or 7.x" in done.stderr


def _emulate_options() -> list[argparse.Action]:
    # argparse has no public way to reach a subcommand's parser.
    [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    parser: argparse.ArgumentParser = commands.choices["emulate"]
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


async def test_help_documents_every_option() -> None:
    """``gateway emulate --help`` lists every option with its description and default."""
    # A wide terminal, so argparse does not break help texts (it breaks at hyphens too).
    done = await process.run(
        process.command("emulate", "--help"), timeout=STARTUP, env={"COLUMNS": "1000"}
    )
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    options = _emulate_options()
    assert len(options) == 25
    for action in options:
        assert action.help, f"{action.option_strings[0]} has no help"
        assert action.option_strings[0] in text
        assert " ".join(action.help.split()) in text, action.option_strings[0]
        if action.default is argparse.SUPPRESS:  # absent unless given: the help says what then
            assert "when not given" in action.help, action.option_strings[0]
        else:
            assert f"(default: {action.default})" in text, action.option_strings[0]


async def _interfaces_over_api_ssl(port: int, **tls: object) -> int:
    """Poll the emulator at ``port`` once through the gateway's own api-ssl client."""
    entry = {"id": "cli", "host": "127.0.0.1", "port": port, "username": "admin", "tls": True}
    settings = settings_from_dict({"routers": [{**entry, "password": "admin", **tls}]}, source="t")
    client = RouterClient(settings.routers[0], CLIENT_TIMEOUT)
    try:
        return len(await within(client.print_interfaces(["name"]), DEADLINE))
    finally:
        await client.close()


async def test_tls_anonymous_serves_api_ssl_without_a_certificate() -> None:
    """``--tls-anonymous`` serves api-ssl like a router without a certificate: tls = true works."""
    async with emulate("--tls-anonymous") as emulated:
        assert "api-ssl without a certificate" in await emulated.line()
        assert await _interfaces_over_api_ssl(emulated.port) == 9
        assert await emulated.terminate() == 0


async def test_tls_prints_the_fingerprint_of_its_generated_certificate() -> None:
    """``--tls`` generates a certificate and prints the fingerprint a gateway can pin."""
    async with emulate("--tls") as emulated:
        line = await emulated.line()
        found = re.search(r"SHA-256 fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})$", line.strip())
        assert found, line
        pinned = found[1]
        assert await _interfaces_over_api_ssl(emulated.port, tls_fingerprint=pinned) == 9
        assert await emulated.terminate() == 0


async def test_tls_serves_a_given_certificate(tmp_path: Path) -> None:
    """``--tls --tls-cert --tls-key`` presents that certificate (its fingerprint is printed)."""
    certificate = make_certificate("edge-1")
    (tmp_path / "cert.pem").write_bytes(certificate.cert_pem)
    (tmp_path / "key.pem").write_bytes(certificate.key_pem)
    options = ("--tls", f"--tls-cert={tmp_path / 'cert.pem'}", f"--tls-key={tmp_path / 'key.pem'}")
    async with emulate(*options) as emulated:
        assert certificate.fingerprint in await emulated.line()
        pinned = certificate.fingerprint
        assert await _interfaces_over_api_ssl(emulated.port, tls_fingerprint=pinned) == 9
        assert await emulated.terminate() == 0


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--tls", "--tls-cert=/nonexistent.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-cert=a.pem", "--tls-key=b.pem"], "need --tls"),
        (["--tls", "--tls-anonymous"], "not allowed with argument"),
        (["--tls", "--tls-cert=/nonexistent.pem", "--tls-key=/nonexistent.key"], "cannot read"),
    ],
    ids=["cert-without-key", "cert-without-tls", "both-modes", "unreadable-cert"],
)
async def test_contradictory_or_unusable_tls_options_exit_2(
    options: list[str], expected: str
) -> None:
    """Contradictory or unusable TLS options exit 2 with a message naming the problem."""
    done = await process.run(process.command("emulate", "--port", "0", *options), timeout=STARTUP)
    assert done.returncode == 2
    assert expected in done.stderr


@pytest.mark.parametrize("option", ["--port", "--control-port"])
async def test_a_port_in_use_is_one_line_not_a_traceback(option: str) -> None:
    """Started on a port another program holds, it says so in one line and exits non-zero."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = (
            ["--port", str(port)] if option == "--port" else ["--port", "0", option, str(port)]
        )
        done = await process.run(process.command("emulate", *options), timeout=STARTUP)
    assert done.returncode not in (0, None)
    message = done.stderr
    assert "Traceback" not in message
    assert message.count("\n") == 1, message
    assert f"cannot listen on 127.0.0.1:{port}" in message


@pytest.mark.parametrize(
    ("version", "logins"),
    [
        ("6.42.12", "MD5 challenge login only"),
        ("6.44.6", "plain and MD5 challenge logins"),
        ("6.45.1", "plain login only"),
        ("7.18.2", "plain login only"),
    ],
)
def test_the_start_up_line_names_the_logins_the_version_accepts(version: str, logins: str) -> None:
    """6.43 to 6.45.0 accept both logins, and the start-up line says so."""
    assert login_methods(Version.parse(version)) == logins


async def test_the_start_up_line_of_a_6_44_router() -> None:
    """The emulator acting as 6.44 announces both logins when it starts."""
    async with emulate("--ros-version", "6.44.6") as emulated:
        assert "RouterOS 6.44.6 emulator" in emulated.banner
        assert "plain and MD5 challenge logins" in emulated.banner
        assert await emulated.terminate() == 0


async def test_customers_on_the_command_line() -> None:
    """``--queues``, ``--pppoe`` and ``--hotspot`` fill the three customer menus, and the
    start-up line counts them."""
    async with emulate(
        "--queues=3", "--pppoe=2", "--pppoe-session=0", "--hotspot=2", "--hotspot-session=0"
    ) as emulated:
        assert "(11 interfaces, 7 simple queues, 2 PPP sessions, 2 hotspot users," in (
            emulated.banner
        )
        api = await within(
            librouteros.async_connect(
                "127.0.0.1", "admin", "admin", port=emulated.port, timeout=CLIENT_TIMEOUT
            ),
            DEADLINE,
        )
        try:
            queues = await rows_of(api("/queue/simple/print"))
            ppp = await rows_of(api("/ppp/active/print"))
            hotspot = await rows_of(api("/ip/hotspot/active/print"))
        finally:
            await api.close()
        assert [row["dynamic"] for row in queues] == [False] * 3 + [True] * 4
        assert [row["name"] for row in ppp] == ["user0001", "user0002"]
        assert [row["user"] for row in hotspot] == ["guest0001", "guest0002"]
        assert await emulated.terminate() == 0


def test_pppoe_customers_without_queues() -> None:
    """``--no-pppoe-queues`` keeps the PPPoE sessions and interfaces but adds no queue for them."""
    args = build_parser().parse_args(["emulate", "--pppoe=2", "--queues=1", "--no-pppoe-queues"])
    device = Device(emulated_config(args))
    assert [queue.name for queue in device.queues.values()] == ["cust0001"]
    assert [session.name for session in device.ppp_active.values()] == ["user0001", "user0002"]
    args = build_parser().parse_args(["emulate", "--pppoe=2"])
    assert len(Device(emulated_config(args)).queues) == 2


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--queues=-1", "--queues: expected 0 or more, got -1"),
        ("--hotspot-session=-5", "--hotspot-session: expected 0 or more, got -5.0"),
        ("--interfaces=0", "--interfaces: a router has at least one interface, got 0"),
    ],
)
async def test_impossible_sizes_exit_2(option: str, message: str) -> None:
    """A negative count or session length, or no interface at all, exits 2 naming the option."""
    done = await process.run(process.command("emulate", option), timeout=STARTUP)
    assert done.returncode == 2
    assert done.stderr.strip() == f"gateway emulate: {message}"
    assert done.stdout == ""
