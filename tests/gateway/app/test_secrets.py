"""No secret anywhere the gateway writes: log lines at DEBUG, frames, REST bodies, metrics, errors.

Known secrets go in (router passwords, one of them wrong, the JWT secret, a good and a bad
token), logins succeed and fail in both login methods, viewers are refused, configurations are
broken; then every log record (ours and the libraries', all at DEBUG), every frame and body and
the /metrics text are searched for every piece of every secret. A piece is 4 characters of a
secret a person chose (which contain characters no ordinary text has), and 8 characters of a
machine-made one (tokens, and the legacy login's challenge response, an MD5 over the password):
shorter pieces of base64 or hex text turn up by chance in timestamps and challenges.
"""

from __future__ import annotations

import logging
import re
import signal
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import aiohttp
import jwt
import orjson
import pytest

from gateway import process
from gateway.config import Settings, settings_from_dict
from gateway.emulator.device import Device, sized_config
from gateway.emulator.server import Fault, RouterEmulator
from gateway.emulator.session import legacy_response
from gateway.emulator.version import Version
from tests.support.gateway import gateway, running
from tests.support.timing import eventually, seconds

ROUTER_PASSWORD: Final = "Zq9ü-Kv3ß#Wx7"
WRONG_PASSWORD: Final = "Hj4ö-Rt8ñ!Pm2"
JWT_SECRET: Final = "jwt-Sk7mQ§2vX9pLr4tHz-Nb6cV1xJ8wE5"
CLAIMS: Final = {"sub": "noc", "exp": 4_102_444_800, "routers": "*"}  # 2100-01-01
TOKEN: Final = jwt.encode(CLAIMS, JWT_SECRET, algorithm="HS256")
FORGED_TOKEN: Final = jwt.encode(
    CLAIMS, "not-the-gateway-key-9f8e7d-6c5b4a3f2e1d", algorithm="HS256"
)
GARBAGE_TOKEN: Final = "qP3xR8vL2mW9nK4tY7sZ"

HUMAN: Final = (ROUTER_PASSWORD, WRONG_PASSWORD, JWT_SECRET)
MACHINE: Final = (TOKEN, FORGED_TOKEN, GARBAGE_TOKEN)

_RET = re.compile(r"=ret=([0-9a-f]{32})")
_LOG_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def pieces(secret: str, size: int) -> set[str]:
    """Every piece of ``secret`` that is ``size`` characters long (the whole of a shorter one)."""
    if len(secret) <= size:
        return {secret}
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def assert_no_secret(where: str, text: str, *, derived: Iterable[str] = ()) -> None:
    """Fail, naming the place, if ``text`` holds any piece of any secret."""
    checks = [(s, 4) for s in HUMAN] + [(s, 8) for s in (*MACHINE, *derived)]
    for secret, size in checks:
        for piece in pieces(secret, size):
            assert piece not in text, f"{where}: a piece of a secret ({piece!r}) in:\n{text}"


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could print of a record: the formatted line and every field."""
    return _LOG_FORMAT.format(record) + "\n" + repr(vars(record))


def responses(text: str, password: str) -> set[str]:
    """The challenge responses of ``password`` to every challenge (``=ret=``) seen in ``text``."""
    return {legacy_response(password, challenge) for challenge in _RET.findall(text)}


def router(version: Version, *, password: str = ROUTER_PASSWORD) -> RouterEmulator:
    return RouterEmulator(Device(sized_config(8, version=version)), password=password)


def settings_for(routers: dict[str, tuple[RouterEmulator, str]]) -> Settings:
    return settings_from_dict(
        {
            "server": {"host": "127.0.0.1", "port": 0},
            "auth": {"mode": "jwt", "jwt_secret_env": "TEST_JWT_SECRET"},
            "poll": {"interval": 0.3, "timeout": 1.0},
            "routers": [
                {
                    "id": rid,
                    "host": "127.0.0.1",
                    "port": emu.port,
                    "username": "admin",
                    "password": password,
                }
                for rid, (emu, password) in routers.items()
            ],
        },
        source="test",
        env={"TEST_JWT_SECRET": JWT_SECRET},
    )


async def test_no_secret_in_logs_frames_bodies_or_metrics(caplog: pytest.LogCaptureFixture) -> None:
    """Good and bad logins (both methods), refused viewers and REST calls, all at DEBUG: the
    librouteros wire log shows the login words masked, and nothing anywhere holds a secret."""
    caplog.set_level(logging.DEBUG)
    plain, legacy = router(Version(7, 18, 2)), router(Version(6, 42, 12))
    wrong, refusing = router(Version(7, 18, 2)), router(Version(6, 42, 12))
    texts: list[tuple[str, str]] = []
    async with running(plain, legacy, wrong, refusing):
        await refusing.set_fault(Fault("auth"))
        settings = settings_for(
            {
                "plain": (plain, ROUTER_PASSWORD),
                "legacy": (legacy, ROUTER_PASSWORD),
                "wrong": (wrong, WRONG_PASSWORD),
                "refusing": (refusing, ROUTER_PASSWORD),
            }
        )
        async with gateway(settings) as gw:
            ws = await gw.http.ws_connect(gw.url(f"/ws?token={TOKEN}"))
            for rid in ("plain", "legacy", "wrong", "refusing"):
                await ws.send_str(orjson.dumps({"type": "subscribe", "router": rid}).decode())
            states: dict[str, str] = {}
            want = {"plain": "up", "legacy": "up", "wrong": "down", "refusing": "down"}
            while states != want:
                msg = await ws.receive(timeout=seconds(10))
                assert msg.type is aiohttp.WSMsgType.TEXT, msg
                texts.append(("frame", msg.data))
                message = orjson.loads(msg.data)
                if message["type"] == "status":
                    states[message["router"]] = message["state"]
            await ws.close()
            assert (legacy.logins, wrong.login_failures, refusing.login_failures) == (1, 1, 1)

            for bad in (FORGED_TOKEN, GARBAGE_TOKEN):
                refused = await gw.http.ws_connect(gw.url(f"/ws?token={bad}"))
                msg = await refused.receive(timeout=seconds(5))
                assert msg.type is aiohttp.WSMsgType.CLOSE
                assert refused.close_code == 4401
                texts.append(("4401 reason", str(msg.extra)))
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            forged = {"Authorization": f"Bearer {FORGED_TOKEN}"}
            for path, headers, status in [
                ("/api/routers", bearer, 200),
                ("/api/routers/plain/traffic", bearer, 200),
                ("/api/routers/wrong/traffic", bearer, None),
                ("/api/routers", forged, 401),
                ("/api/routers/legacy/traffic", {}, 401),
                ("/metrics", {}, 200),
            ]:
                async with gw.http.get(gw.url(path), headers=headers) as response:
                    assert status is None or response.status == status, path
                    texts.append((f"{path} {response.status}", await response.text()))

    logs = "\n".join(record_text(r) for r in caplog.records)
    # The paths that carry secrets were taken: the wire log shows both logins, masked, and the
    # access log shows the token parameter, masked.
    assert "'=password=***'" in logs
    assert "'=response=***'" in logs
    assert "token=***" in logs
    derived = responses(logs, ROUTER_PASSWORD) | responses(logs, WRONG_PASSWORD)
    assert len(derived) >= 2, "no challenge login in the wire log"
    assert_no_secret("log records", logs, derived=derived)
    for where, text in texts:
        assert_no_secret(where, text, derived=derived)
    body = dict(texts)["/api/routers 200"]
    errors = {r["id"]: r["last_error"] for r in orjson.loads(body)["routers"]}
    assert "invalid user name or password" in errors["wrong"]
    assert "cannot log in" in errors["refusing"]


def _config(path: Path, port: int) -> Path:
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = 0
shutdown_grace = 2.0

[auth]
mode = "jwt"
jwt_secret_env = "TEST_JWT_SECRET"

[poll]
interval = 0.3
timeout = 1.0

[[routers]]
id = "legacy"
host = "127.0.0.1"
port = {port}
username = "admin"
password_env = "LEGACY_PASSWORD"
""",
        encoding="utf-8",
    )
    return path


_ENV: Final = {"LEGACY_PASSWORD": ROUTER_PASSWORD, "TEST_JWT_SECRET": JWT_SECRET}


def _serve_command(config: Path) -> list[str]:
    return process.command("serve", "--log-level", "DEBUG", "--config", str(config))


@asynccontextmanager
async def serve(config: Path, env: dict[str, str]) -> AsyncIterator[process.Child]:
    """``gateway serve --log-level DEBUG``, listening; killed at the end if it still runs."""
    async with process.started(
        _serve_command(config),
        ready=process.GATEWAY_READY,
        deadline=seconds(15),
        env=env,
    ) as child:
        yield child


async def test_serve_at_debug_logs_no_secret(tmp_path: Path) -> None:
    """The real ``gateway serve --log-level DEBUG`` logs a pre-6.43 login word by word with the
    password and the response masked, and its stderr holds no piece of any secret."""
    emu = router(Version(6, 42, 12))
    async with running(emu), serve(_config(tmp_path / "gw.toml", emu.port), _ENV) as child:
        url = child.url
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as http:

            async def up() -> bool:
                async with http.get(f"{url}/api/routers/legacy/traffic", headers=bearer) as r:
                    return r.status == 200 and (await r.json())["state"] == "up"

            await eventually(up, timeout=seconds(10), interval=0.1, message="legacy router up")
            refused = await http.ws_connect(f"{url}/ws?token={FORGED_TOKEN}")
            await refused.receive(timeout=seconds(5))
            assert refused.close_code == 4401
            async with http.get(f"{url}/api/routers", headers={"Authorization": "x"}) as r:
                assert r.status == 401
        child.send_signal(signal.SIGTERM)
        assert await child.wait(seconds(10)) == 0
        stderr = child.output("stderr")
    assert "'=password=***'" in stderr
    assert "'=response=***'" in stderr
    derived = responses(stderr, ROUTER_PASSWORD)
    assert derived, "no challenge in the DEBUG log"
    assert_no_secret("gateway serve stderr", stderr, derived=derived)


_ROUTER_TABLE: Final = """
[[routers]]
id = "core-1"
host = "127.0.0.1"
username = "admin"
"""

CONFIG_ERRORS: Final = [
    pytest.param(
        _ROUTER_TABLE + 'password_env = "LEGACY_PASSWORD"\nencoding = "ascii"\n',
        "routers[0].password_env",
        id="password-outside-encoding",
    ),
    pytest.param(
        _ROUTER_TABLE + f'pasword = "{ROUTER_PASSWORD}"\n', "routers[0].pasword", id="typo-key"
    ),
    pytest.param(
        _ROUTER_TABLE + f'password = ["{ROUTER_PASSWORD}"]\n',
        "routers[0].password",
        id="wrong-type",
    ),
    pytest.param(
        _ROUTER_TABLE + f'password = "{ROUTER_PASSWORD}\n', "invalid TOML", id="toml-syntax"
    ),
    pytest.param(
        _ROUTER_TABLE + f'password = "{ROUTER_PASSWORD}"\npassword_env = "LEGACY_PASSWORD"\n',
        "exactly one of",
        id="two-sources",
    ),
    pytest.param(
        '[auth]\nmode = "jwt"\njwt_secret_env = "TEST_JWT_SECRET"\n'
        + _ROUTER_TABLE.replace('"core-1"', '"core 1"')
        + 'password_env = "LEGACY_PASSWORD"\n',
        "routers[0].id",
        id="error-after-secrets-read",
    ),
]


@pytest.mark.parametrize(("text", "names"), CONFIG_ERRORS)
async def test_config_errors_at_debug_show_no_secret(tmp_path: Path, text: str, names: str) -> None:
    """A broken configuration stops ``gateway serve --log-level DEBUG`` with exit 2 and a
    message naming the key, and nothing it prints holds a piece of a secret."""
    config = tmp_path / "broken.toml"
    config.write_text(text, encoding="utf-8")
    done = await process.run(_serve_command(config), timeout=seconds(15), env=_ENV)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert names in output
    assert_no_secret("config error", output)
