"""Tokens: what a viewer may see, which keys may sign for it, and the clear reasons it may not."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from gateway.auth import EVERYTHING, MAX_TOKEN, AuthError, Grant, Verifier, authorise
from gateway.config import AuthSettings, Secret
from gateway.core.filters import InterfaceFilter
from tests.support.tokens import (
    SECRET,
    ec_key,
    forged_hs256,
    hs256,
    jwk,
    jwks,
    private_pem,
    public_pem,
    rsa_key,
    signed,
    unsigned,
)

JWT = AuthSettings(mode="jwt", jwt_secret=Secret(SECRET), leeway=0.0)


def with_keys(**settings: object) -> AuthSettings:
    """jwt mode with these key settings (text as the configuration would have read it)."""
    return AuthSettings(mode="jwt", **settings)  # type: ignore[arg-type]


RSA = with_keys(public_key_pem=public_pem(rsa_key()).decode())
EC = with_keys(public_key_pem=public_pem(ec_key()).decode())


def test_mode_none_sees_everything() -> None:
    """Without auth every viewer sees every router and interface."""
    assert authorise(AuthSettings(), None) is EVERYTHING


def test_token_limits_routers_and_interfaces() -> None:
    """A customer's token shows one router, and there only its own PPPoE interface."""
    grant = authorise(JWT, hs256(routers=["core-1"], interfaces={"core-1": ["<pppoe-alice>"]}))
    assert grant.allows("core-1")
    assert not grant.allows("core-2")
    assert grant.interface_filter("core-1").matches("<pppoe-alice>")
    assert not grant.interface_filter("core-1").matches("<pppoe-bob>")
    assert grant.subject == "cust-1"


def test_token_with_an_exact_name_shows_that_interface_only() -> None:
    """A token naming a customer's interface exactly never shows a look-alike, glob characters
    and all."""
    grant = authorise(JWT, hs256(interfaces={"core": [{"exact": "<pppoe-alice[1]>"}]}))
    flt = grant.interface_filter("core")
    assert flt.matches("<pppoe-alice[1]>")
    assert not flt.matches("<pppoe-alice1>")


def test_wildcard_routers() -> None:
    """``"routers": "*"`` grants every router, whole."""
    grant = authorise(JWT, hs256(routers="*"))
    assert grant.allows("anything")
    assert grant.interface_filter("anything").is_all


def test_a_star_inside_the_router_list_is_refused() -> None:
    """``"routers": ["*"]`` is refused saying how to write "every router", not a token that
    silently sees nothing."""
    with pytest.raises(AuthError) as caught:
        authorise(JWT, hs256(routers=["core-1", "*"]))
    assert str(caught.value) == (
        'token claim "routers" is either the string "*" (every router) or a list of router '
        'ids, got a list containing "*"'
    )


# The token matrix, key by key: what a gateway configured with ``settings`` says to each token.
MATRIX: list[tuple[str, AuthSettings, Callable[[], str | None], str | None]] = [
    ("no token", JWT, lambda: None, "a token is required"),
    ("not a JWT", JWT, lambda: "not-a-jwt", "malformed"),
    ("too long", JWT, lambda: "x" * (MAX_TOKEN + 1), "longer than"),
    ("HS256 good", JWT, lambda: hs256(), None),
    ("HS256 bad signature", JWT, lambda: hs256(secret="other" * 8), "signature does not verify"),
    ("alg none", JWT, lambda: unsigned(), "algorithm 'none' is not accepted"),
    ("expired", JWT, lambda: hs256(lifetime=-10), "expired"),
    ("not yet valid", JWT, lambda: hs256(nbf=int(time.time()) + 60), "not valid yet"),
    ("issued in the future", JWT, lambda: hs256(iat=int(time.time()) + 60), "not valid yet"),
    ("no routers", JWT, lambda: jwt.encode({"sub": "x", "exp": 2**40}, SECRET), "routers"),
    ("no sub", JWT, lambda: jwt.encode({"routers": "*", "exp": 2**40}, SECRET), "'sub'"),
    ("no exp", JWT, lambda: jwt.encode({"routers": "*", "sub": "x"}, SECRET), "'exp'"),
    ("routers not a list", JWT, lambda: hs256(routers="core-1"), "routers"),
    ("interfaces ill-shaped", JWT, lambda: hs256(interfaces={"c": "x"}), "interfaces.c"),
    ("exact not text", JWT, lambda: hs256(interfaces={"c": [{"exact": 1}]}), "interfaces.c"),
    ("RS256 good", RSA, lambda: signed(rsa_key()), None),
    ("RS256 other key", RSA, lambda: signed(rsa_key(n=1)), "signature does not verify"),
    ("RS256 where only HS256", JWT, lambda: signed(rsa_key()), "'RS256' is not accepted"),
    ("HS256 where only RS256", RSA, lambda: hs256(), "'HS256' is not accepted"),
    (
        "HS256 signed with the RSA public key",
        RSA,
        lambda: forged_hs256(public_pem(rsa_key())),
        "'HS256' is not accepted",
    ),
    (
        "HS256 signed with the RSA public key, HS256 also configured",
        with_keys(jwt_secret=Secret(SECRET), public_key_pem=public_pem(rsa_key()).decode()),
        lambda: forged_hs256(public_pem(rsa_key())),
        "signature does not verify",
    ),
    ("ES256 good", EC, lambda: signed(ec_key()), None),
    ("ES256 other key", EC, lambda: signed(ec_key(n=1)), "signature does not verify"),
    ("ES256 where only RS256", RSA, lambda: signed(ec_key()), "'ES256' is not accepted"),
]


@pytest.mark.parametrize(
    ("settings", "make", "refusal"),
    [pytest.param(s, m, r, id=name) for name, s, m, r in MATRIX],
)
def test_token_matrix(
    settings: AuthSettings, make: Callable[[], str | None], refusal: str | None
) -> None:
    """Each kind of token is accepted or refused as its key and claims deserve, saying why."""
    verifier = Verifier(settings)
    if refusal is None:
        assert verifier.authorise(make()).subject == "cust-1"
    else:
        with pytest.raises(AuthError, match=refusal):
            verifier.authorise(make())


def test_issuer_and_audience_are_checked_when_configured() -> None:
    """With ``issuer`` and ``audience`` set, only tokens naming both are accepted."""
    settings = AuthSettings(
        mode="jwt", jwt_secret=Secret(SECRET), issuer="https://portal.example.net", audience="gw"
    )
    verifier = Verifier(settings)
    good: dict[str, Any] = {"iss": "https://portal.example.net", "aud": "gw"}
    assert verifier.authorise(hs256(**good)).subject == "cust-1"
    assert verifier.authorise(hs256(iss=good["iss"], aud=["other", "gw"])).subject == "cust-1"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"iss": "https://evil.example.com", "aud": "gw"}, "another issuer"),
        ({"aud": "gw"}, "'iss'"),
        ({"iss": good["iss"], "aud": "other"}, "another audience"),
        ({"iss": good["iss"]}, "'aud'"),
    ]
    for claims, refusal in cases:
        with pytest.raises(AuthError, match=refusal):
            verifier.authorise(hs256(**claims))


def test_a_token_for_an_audience_is_refused_where_none_is_configured() -> None:
    """A token minted for some audience is not good at a gateway that expects none."""
    with pytest.raises(AuthError, match="another audience"):
        Verifier(JWT).authorise(hs256(aud="billing"))


def test_clock_skew_leeway() -> None:
    """A token just past ``exp`` (or just before ``nbf``) passes within the leeway, not beyond."""
    lenient = Verifier(AuthSettings(mode="jwt", jwt_secret=Secret(SECRET), leeway=30.0))
    assert lenient.authorise(hs256(lifetime=-10)).subject == "cust-1"
    assert lenient.authorise(hs256(nbf=int(time.time()) + 10)).subject == "cust-1"
    with pytest.raises(AuthError, match="expired"):
        lenient.authorise(hs256(lifetime=-60))


def test_jwks_keys_are_picked_by_kid() -> None:
    """A JWKS holds several keys; a token is checked with the key its ``kid`` names."""
    settings = with_keys(
        jwks_json=jwks(jwk(rsa_key(), "2025"), jwk(rsa_key(n=1), "2026"), jwk(ec_key(), "ec"))
    )
    verifier = Verifier(settings)
    assert verifier.authorise(signed(rsa_key(), kid="2025")).subject == "cust-1"
    assert verifier.authorise(signed(rsa_key(n=1), kid="2026")).subject == "cust-1"
    assert verifier.authorise(signed(ec_key(), kid="ec")).subject == "cust-1"
    # Without a kid, every key of the token's algorithm is tried.
    assert verifier.authorise(signed(rsa_key(n=1))).subject == "cust-1"
    with pytest.raises(AuthError, match="signature does not verify"):
        verifier.authorise(signed(rsa_key(), kid="2026"))
    with pytest.raises(AuthError, match="key id '2027' is not among"):
        verifier.authorise(signed(rsa_key(), kid="2027"))


def test_keys_come_from_the_callable_at_each_check() -> None:
    """A verifier asks for the keys on every check, so a re-read key file counts at once."""
    current = [RSA]

    def keys() -> object:
        from gateway.auth import settings_keys

        return settings_keys(current[0])

    verifier = Verifier(RSA, keys)  # type: ignore[arg-type]
    assert verifier.authorise(signed(rsa_key())).subject == "cust-1"
    current[0] = EC
    with pytest.raises(AuthError, match="'RS256' is not accepted"):
        verifier.authorise(signed(rsa_key()))
    assert verifier.authorise(signed(ec_key())).subject == "cust-1"


def test_a_token_whose_globs_would_be_costly_is_refused_naming_the_limit() -> None:
    """A token's interfaces claim obeys the same limits as a subscription's."""
    stars = ["*a" * 20]
    with pytest.raises(AuthError, match=r'interfaces\.core.*at most 4 "\*"'):
        authorise(JWT, hs256(interfaces={"core": stars}))
    many = [f"{n:03d}*" + "x" * 60 for n in range(5)]
    with pytest.raises(AuthError, match="characters together"):
        authorise(JWT, hs256(interfaces={"core": many}))


def grant(routers: list[str] | None, **interfaces: list[str]) -> Grant:
    return Grant(
        subject="s",
        routers=None if routers is None else frozenset(routers),
        scopes={"interfaces": {r: InterfaceFilter.of(g) for r, g in interfaces.items()}}
        if interfaces
        else {},
    )


@pytest.mark.parametrize(
    ("new", "old", "within"),
    [
        (grant(["a"]), grant(["a"]), True),
        (grant(["a"]), grant(["a", "b"]), True),
        (grant(["a", "b"]), grant(["a"]), False),
        (grant(None), grant(["a"]), False),
        (grant(["a"]), grant(None), True),
        (grant(["a"], a=["x"]), grant(["a"]), True),
        (grant(["a"]), grant(["a"], a=["x"]), False),
        (grant(["a"], a=["x"]), grant(["a"], a=["x", "y"]), True),
        (grant(["a"], a=["x", "y"]), grant(["a"], a=["x"]), False),
        (grant(["a"], a=["<pppoe-alice>"]), grant(["a"], a=["<pppoe-*>"]), True),
        (grant(["a"], a=["<pppoe-*>"]), grant(["a"], a=["<pppoe-alice>"]), False),
        (grant(["a"], a=["<pppoe-a*>"]), grant(["a"], a=["<pppoe-*>"]), False),
        (grant(None, b=["x"]), grant(None, b=["x"]), True),
        (grant(None), grant(None, b=["x"]), False),
        (grant(["a"]), grant(None, b=["x"]), True),
    ],
)
def test_a_grant_is_within_another(new: Grant, old: Grant, within: bool) -> None:
    """A refreshed token may keep or narrow what the connection sees, never widen it; a glob
    that merely looks narrower is not taken on trust."""
    assert new.within(old) is within


def readme_minting_example() -> str:
    """The Python code block of the README's minting example ("Security", "Keys")."""
    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    after = text.split("Minting, in Python with PyJWT", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_minting_example_makes_tokens_the_gateway_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's PyJWT code, run as written, mints an HS256 token and an ES256 token with a
    kid that a gateway configured as the README says accepts, with iss and aud checked."""
    code = readme_minting_example()
    key = ec_key()
    (tmp_path / "signer.key").write_bytes(private_pem(key))
    monkeypatch.chdir(tmp_path)
    checks = {"issuer": "https://portal.example.net", "audience": "traffic-gateway"}
    hs_part = code.split("# ES256", 1)[0]
    namespace: dict[str, Any] = {"secret": SECRET}
    exec(hs_part, namespace)  # the README's own example, run as a reader would
    hs = with_keys(jwt_secret=Secret(SECRET), **checks)
    assert Verifier(hs).authorise(namespace["token"]).subject == "customer-4711"
    namespace = {"secret": SECRET}
    exec(code, namespace)
    es = with_keys(jwks_json=jwks(jwk(key, "2026-11")), **checks)
    grant = Verifier(es).authorise(namespace["token"])
    assert grant.interface_filter("core-1").matches("<pppoe-alice>")
    assert not grant.interface_filter("core-1").matches("<pppoe-bob>")
    with pytest.raises(AuthError, match="audience"):
        Verifier(with_keys(jwks_json=jwks(jwk(key, "2026-11")))).authorise(namespace["token"])


def test_queues_and_hotspot_claims_scope_those_sources() -> None:
    """One token limits a customer to its own interface, queue and hotspot user at once."""
    grant = authorise(
        JWT,
        hs256(
            interfaces={"core": [{"exact": "<pppoe-alice>"}]},
            queues={"core": [{"exact": "<pppoe-alice>"}, "cust-alice*"]},
            hotspot={"core": [{"exact": "alice"}]},
        ),
    )
    assert grant.filter("core", "queues").matches("cust-alice-2")
    assert not grant.filter("core", "queues").matches("cust-bob")
    assert grant.filter("core", "hotspot").matches("alice")
    assert not grant.filter("core", "hotspot").matches("bob")
    assert grant.filter("core") == grant.interface_filter("core")


def test_a_router_scoped_in_one_source_shows_nothing_of_the_others() -> None:
    """A token that scopes a router's interfaces (as every customer token before sources did)
    shows none of its queues or hotspot users; a router it scopes nowhere is whole."""
    grant = authorise(JWT, hs256(routers="*", interfaces={"core": [{"exact": "<pppoe-alice>"}]}))
    for source in ("queues", "hotspot"):
        flt = grant.filter("core", source)
        assert not flt.is_all
        assert not flt.matches("<pppoe-alice>")
        assert grant.filter("edge", source).is_all
    assert grant.filter("edge").is_all


@pytest.mark.parametrize("claim", ["queues", "hotspot"])
def test_a_bad_source_claim_is_refused_naming_it(claim: str) -> None:
    """A queues or hotspot claim that is not router -> name list is refused, saying which."""
    not_a_map: dict[str, Any] = {claim: ["core"]}
    with pytest.raises(AuthError, match=f'"{claim}"'):
        authorise(JWT, hs256(**not_a_map))
    not_a_list: dict[str, Any] = {claim: {"core": "a*"}}
    with pytest.raises(AuthError, match=f'"{claim}.core"'):
        authorise(JWT, hs256(**not_a_list))


def scoped(routers: list[str] | None, **scopes: dict[str, list[str]]) -> Grant:
    """A grant with name filters per source (``queues={"a": ["x"]}``)."""
    return Grant(
        subject="s",
        routers=None if routers is None else frozenset(routers),
        scopes={
            source: {router: InterfaceFilter.of(globs) for router, globs in by_router.items()}
            for source, by_router in scopes.items()
        },
    )


@pytest.mark.parametrize(
    ("new", "old", "within"),
    [
        # A token scoping a router's interfaces shows none of its queues: a new one that shows
        # them widens it.
        (scoped(["a"]), scoped(["a"], interfaces={"a": ["x"]}), False),
        (scoped(["a"], queues={"a": ["q"]}), scoped(["a"], interfaces={"a": ["x"]}), False),
        (
            scoped(["a"], interfaces={"a": ["x"]}, queues={"a": ["q"]}),
            scoped(["a"], interfaces={"a": ["x"]}, queues={"a": ["q", "r"]}),
            True,
        ),
        (scoped(["a"], interfaces={"a": ["x"]}), scoped(["a"], queues={"a": ["q"]}), False),
        (scoped(["a"], interfaces={"a": ["x"]}), scoped(["a"], interfaces={"a": ["x"]}), True),
    ],
)
def test_a_refreshed_token_may_not_widen_any_source(new: Grant, old: Grant, within: bool) -> None:
    """A refresh keeps or narrows every source of every router, queues and hotspot users
    included, by the rule that a router scoped in one source shows nothing of the others."""
    assert new.within(old) is within
