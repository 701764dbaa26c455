"""The token matrix over the wire: every kind of token, as the websocket (subprotocol and first
message) and the REST API each take it, gets the same verdict and the same reason.

Two gateways in front of one router: one with an HS256 secret that also checks ``iss`` and
``aud``, one with an RS256 public key file only (where the algorithm confusion attack lives).
The unit matrix (``tests/gateway/test_auth.py``) covers every refusal's wording; this one shows
that no transport or endpoint skips a check.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from gateway.config import settings_from_dict
from tests.support.gateway import (
    PASSWORD,
    Gateway,
    emulator,
    gateway,
    receive,
    receive_until,
    running,
    send,
)
from tests.support.timing import seconds
from tests.support.tokens import (
    SECRET,
    ec_key,
    forged_hs256,
    hs256,
    public_pem,
    rsa_key,
    signed,
    unsigned,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

ISSUER = "https://portal.example.net"
AUDIENCE = "traffic-gateway"
GOOD: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE}
"""The claims the HS256 gateway requires besides the usual ones."""


@dataclass
class Gateways:
    hs: Gateway
    rs: Gateway


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateways(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateways]:
    keys = tmp_path_factory.mktemp("keys")
    (keys / "signer.pem").write_bytes(public_pem(rsa_key()))
    core = emulator()
    async with running(core):
        router = {
            "id": "core",
            "host": "127.0.0.1",
            "port": core.port,
            "username": "admin",
            "password": PASSWORD,
        }

        def settings(auth: dict[str, Any], base: Path | None = None) -> Any:
            return settings_from_dict(
                {
                    "server": {"host": "127.0.0.1", "port": 0},
                    "auth": {"mode": "jwt", "leeway": 0, **auth},
                    "poll": {"interval": 0.3, "timeout": 1.0},
                    "routers": [router],
                },
                source="test",
                env={"S": SECRET},
                base_dir=base,
            )

        hs = settings({"jwt_secret_env": "S", "issuer": ISSUER, "audience": AUDIENCE})
        rs = settings({"public_key_file": "signer.pem"}, keys)
        async with gateway(hs) as hs_gw, gateway(rs) as rs_gw:
            yield Gateways(hs_gw, rs_gw)


Make = Callable[[], str]

# (name, which gateway, token, refusal: a piece of the reason, or None when accepted)
REFUSED: list[tuple[str, str, Make, str]] = [
    ("bad signature", "hs", lambda: hs256(secret="another-secret-" * 3, **GOOD), "signature"),
    ("alg none", "hs", lambda: unsigned(**GOOD), "'none' is not accepted"),
    ("expired", "hs", lambda: hs256(lifetime=-60, **GOOD), "expired"),
    ("not yet valid", "hs", lambda: hs256(nbf=int(time.time()) + 600, **GOOD), "not valid yet"),
    ("wrong aud", "hs", lambda: hs256(iss=ISSUER, aud="another-service"), "audience"),
    ("no aud", "hs", lambda: hs256(iss=ISSUER), "aud"),
    ("wrong iss", "hs", lambda: hs256(iss="https://evil.example", aud=AUDIENCE), "issuer"),
    ("not a JWT", "hs", lambda: "not-a-jwt", "malformed"),
    (
        "HS256 signed with the RSA public key",
        "rs",
        lambda: forged_hs256(public_pem(rsa_key())),
        "'HS256' is not accepted",
    ),
    ("RS256 from another key", "rs", lambda: signed(rsa_key(n=1)), "signature"),
    ("ES256 where only RS256", "rs", lambda: signed(ec_key()), "'ES256' is not accepted"),
]


def pick(gws: Gateways, which: str) -> Gateway:
    return gws.hs if which == "hs" else gws.rs


async def closed(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    """The close that must come next (no text before it): its code and reason."""
    msg = await ws.receive(timeout=seconds(5))
    assert msg.type is aiohttp.WSMsgType.CLOSE, f"expected a close, got {msg.type} {msg.data}"
    return ws.close_code, str(msg.extra)


async def over_subprotocol(gw: Gateway, token: str) -> aiohttp.ClientWebSocketResponse:
    return await gw.http.ws_connect(gw.url("/ws"), protocols=("gateway.v1", f"bearer.{token}"))


async def over_first_message(gw: Gateway, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await gw.http.ws_connect(gw.url("/ws"))
    await send(ws, {"type": "auth", "token": token})
    return ws


TRANSPORTS = {"subprotocol": over_subprotocol, "first message": over_first_message}


async def rest(gw: Gateway, path: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    timeout = aiohttp.ClientTimeout(total=seconds(5))
    async with gw.http.get(gw.url(path), headers=headers, timeout=timeout) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("which", "make", "refusal"),
    [pytest.param(w, m, r, id=name) for name, w, m, r in REFUSED],
)
async def test_a_refused_token_is_refused_by_every_transport_and_endpoint(
    gateways: Gateways, which: str, make: Make, refusal: str
) -> None:
    """Each bad token closes the websocket with 4401 before any data, whichever way it came,
    and gets 401 from both REST endpoints, with the same reason everywhere."""
    gw = pick(gateways, which)
    token = make()
    reasons = set()
    for connect in TRANSPORTS.values():
        code, reason = await closed(await connect(gw, token))
        assert code == 4401
        reasons.add(reason)
    for path in ("/api/routers", "/api/routers/core/traffic"):
        status, body = await rest(gw, path, token)
        assert status == 401, path
        assert body["error"] == "unauthorized"
        reasons.add(body["message"])
    assert len(reasons) == 1, reasons
    assert refusal in reasons.pop()


async def test_no_token_at_all_is_refused(gateways: Gateways) -> None:
    """No token: a websocket whose first message is not an auth message, or an auth message
    with an empty token, gets 4401; REST gets 401 asking for a bearer token."""
    gw = gateways.hs
    ws = await gw.http.ws_connect(gw.url("/ws"), protocols=("gateway.v1",))
    await send(ws, {"type": "subscribe", "router": "core"})
    code, reason = await closed(ws)
    assert (code, "auth" in reason) == (4401, True)
    code, reason = await closed(await over_first_message(gw, ""))
    assert (code, reason) == (4401, "a token is required")
    for path in ("/api/routers", "/api/routers/core/traffic"):
        async with gw.http.get(gw.url(path)) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await response.json())["message"] == "a token is required"


@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize(
    ("which", "make"),
    [
        pytest.param("hs", lambda: hs256(**GOOD), id="HS256"),
        pytest.param("rs", lambda: signed(rsa_key()), id="RS256"),
    ],
)
async def test_a_good_token_is_served_by_every_transport_and_endpoint(
    gateways: Gateways, which: str, make: Make, transport: str
) -> None:
    """A good token gets the hello, the router's data live, its listing and its snapshot."""
    gw = pick(gateways, which)
    token = make()
    ws = await TRANSPORTS[transport](gw, token)
    hello = await receive(ws)
    assert [r["id"] for r in hello["routers"]] == ["core"]
    await send(ws, {"type": "subscribe", "router": "core", "history": 0})
    frame = await receive_until(ws, "traffic", seconds(5))
    names = {i["name"] for i in frame["interfaces"]}
    assert {"ether1", "ether2", "sfp-sfpplus1"} <= names
    await ws.close()
    status, listing = await rest(gw, "/api/routers", token)
    assert (status, [r["id"] for r in listing["routers"]]) == (200, ["core"])
    status, snapshot = await rest(gw, "/api/routers/core/traffic", token)
    assert (status, {i["name"] for i in snapshot["interfaces"]}) == (200, names)


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_a_token_for_another_router_sees_nothing_of_this_one(
    gateways: Gateways, transport: str
) -> None:
    """A good token for router "edge" is admitted but lists no router here, and a subscribe or
    a snapshot of "core" is answered as for a router that does not exist (the websocket stays
    open)."""
    gw = gateways.hs
    token = hs256(routers=["edge"], **GOOD)
    ws = await TRANSPORTS[transport](gw, token)
    assert (await receive(ws))["routers"] == []
    await send(ws, {"type": "subscribe", "router": "core"})
    error = await receive(ws)
    assert (error["type"], error["code"]) == ("error", "unknown_router")
    await send(ws, {"type": "unsubscribe", "router": "core"})
    assert (await receive(ws))["code"] == "unknown_router"  # still open, still answering
    await ws.close()
    status, listing = await rest(gw, "/api/routers", token)
    assert (status, listing) == (200, {"routers": []})
    status, body = await rest(gw, "/api/routers/core/traffic", token)
    assert (status, body["error"]) == (404, "unknown_router")


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_an_interface_scoped_token_sees_its_interface_only(
    gateways: Gateways, transport: str
) -> None:
    """A token scoped to ether2 gets ether2 alone, live, in history and by REST, even when its
    subscription asks for more."""
    gw = gateways.hs
    token = hs256(interfaces={"core": ["ether2"]}, **GOOD)
    ws = await TRANSPORTS[transport](gw, token)
    await receive(ws)  # hello
    await send(ws, {"type": "subscribe", "router": "core", "interfaces": ["ether*"]})
    frames: list[Any] = []
    while len(frames) < 2:
        message = orjson.loads((await ws.receive(timeout=seconds(5))).data)
        if message["type"] == "history":
            frames.extend(message["frames"])
        elif message["type"] == "traffic":
            frames.append(message)
    assert all([i["name"] for i in f["interfaces"]] == ["ether2"] for f in frames)
    await ws.close()
    status, snapshot = await rest(gw, "/api/routers/core/traffic", token)
    assert (status, [i["name"] for i in snapshot["interfaces"]]) == (200, ["ether2"])
