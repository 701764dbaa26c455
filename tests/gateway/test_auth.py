"""Tokens: what a viewer may see, and the clear reasons it may not."""

from __future__ import annotations

import time

import jwt
import pytest

from gateway.auth import EVERYTHING, AuthError, authorise
from gateway.config import AuthSettings, Secret

SECRET = "k" * 32
JWT = AuthSettings(mode="jwt", jwt_secret=Secret(SECRET))


def token(secret: str = SECRET, **claims: object) -> str:
    body = {"sub": "cust-42", "exp": int(time.time()) + 300, "routers": ["core-1"], **claims}
    return jwt.encode(body, secret, algorithm="HS256")


def test_mode_none_sees_everything() -> None:
    """Without auth every viewer sees every router and interface."""
    assert authorise(AuthSettings(), None) is EVERYTHING


def test_token_limits_routers_and_interfaces() -> None:
    """A customer's token shows one router, and there only its own PPPoE interface."""
    grant = authorise(JWT, token(interfaces={"core-1": ["<pppoe-alice>"]}))
    assert grant.allows("core-1")
    assert not grant.allows("core-2")
    assert grant.interface_filter("core-1").matches("<pppoe-alice>")
    assert not grant.interface_filter("core-1").matches("<pppoe-bob>")
    assert grant.subject == "cust-42"


def test_token_with_an_exact_name_shows_that_interface_only() -> None:
    """A token naming a customer's interface exactly never shows a look-alike, glob characters
    and all."""
    grant = authorise(JWT, token(interfaces={"core-1": [{"exact": "<pppoe-alice[1]>"}]}))
    flt = grant.interface_filter("core-1")
    assert flt.matches("<pppoe-alice[1]>")
    assert not flt.matches("<pppoe-alice1>")


def test_wildcard_routers() -> None:
    """``"routers": "*"`` grants every router, whole."""
    grant = authorise(JWT, token(routers="*"))
    assert grant.allows("anything")
    assert grant.interface_filter("anything").is_all


def test_a_star_inside_the_router_list_is_refused() -> None:
    """``"routers": ["*"]`` is refused saying how to write "every router", not a token that
    silently sees nothing."""
    with pytest.raises(AuthError) as caught:
        authorise(JWT, token(routers=["core-1", "*"]))
    assert str(caught.value) == (
        'token claim "routers" is either the string "*" (every router) or a list of router '
        'ids, got a list containing "*"'
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: None, "required"),
        (lambda: "not-a-jwt", "invalid"),
        (lambda: token(secret="other" * 8), "invalid"),
        (lambda: token(exp=int(time.time()) - 10), "expired"),
        (lambda: jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, SECRET), "routers"),
        (lambda: token(routers="core-1"), "routers"),
        (lambda: token(interfaces={"core-1": "x"}), "interfaces.core-1"),
        (lambda: token(interfaces={"core-1": [{"exact": 1}]}), "interfaces.core-1"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(make: object, reason: str) -> None:
    """Missing, malformed, forged, expired or ill-shaped tokens are refused, saying why."""
    with pytest.raises(AuthError, match=reason):
        authorise(JWT, make())  # type: ignore[operator]


def test_other_algorithms_are_refused() -> None:
    """A token signed with 'none' is never accepted."""
    unsigned = jwt.encode(
        {"sub": "x", "exp": int(time.time()) + 60, "routers": "*"}, "", algorithm="none"
    )
    with pytest.raises(AuthError, match="invalid"):
        authorise(JWT, unsigned)


def test_a_token_whose_globs_would_be_costly_is_refused_naming_the_limit() -> None:
    """A token's interfaces claim obeys the same limits as a subscription's."""
    stars = ["*a" * 20]
    with pytest.raises(AuthError, match=r'interfaces\.core-1.*at most 4 "\*"'):
        authorise(JWT, token(interfaces={"core-1": stars}))
    many = [f"{n:03d}*" + "x" * 60 for n in range(5)]
    with pytest.raises(AuthError, match="characters together"):
        authorise(JWT, token(interfaces={"core-1": many}))
