"""Viewer authorisation: HS256 JWTs minted by the billing system (``[auth] mode = "jwt"``).

A token names the routers its holder may see (``routers``: a list of ids, or ``"*"``) and,
optionally, per router the interfaces (``interfaces``: router id -> a list of name globs and
``{"exact": name}`` entries, see ``name_patterns``), so a customer sees only its own PPPoE
interface. In mode ``none`` every viewer sees everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import jwt

from gateway.config import AuthSettings
from gateway.core.frames import InterfaceFilter, name_patterns

__all__ = ["EVERYTHING", "AuthError", "Grant", "authorise"]


class AuthError(Exception):
    """The token is missing, malformed, wrongly signed or expired. The message says which."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What one viewer may see. ``routers`` None means every router."""

    subject: str | None = None
    routers: frozenset[str] | None = None
    interfaces: Mapping[str, InterfaceFilter] = field(default_factory=dict)
    expires: float | None = None

    def allows(self, router: str) -> bool:
        return self.routers is None or router in self.routers

    def interface_filter(self, router: str) -> InterfaceFilter:
        """The token's interface filter for a router (everything when it names none)."""
        return self.interfaces.get(router, InterfaceFilter.all())


EVERYTHING = Grant()


def _grant(claims: Mapping[str, object]) -> Grant:
    routers = claims.get("routers")
    if routers == "*":
        allowed: frozenset[str] | None = None
    elif isinstance(routers, list) and all(isinstance(r, str) for r in routers):
        if "*" in routers:
            # No router has the id "*": as a list entry it would grant nothing, silently.
            raise AuthError(
                'token claim "routers" is either the string "*" (every router) or a list of '
                'router ids, got a list containing "*"'
            )
        allowed = frozenset(routers)
    else:
        raise AuthError('token claim "routers" must be a list of router ids or "*"')
    interfaces: dict[str, InterfaceFilter] = {}
    raw = claims.get("interfaces", {})
    if not isinstance(raw, dict):
        raise AuthError('token claim "interfaces" must map router ids to lists of name globs')
    for router, entries in raw.items():
        try:
            interfaces[router] = InterfaceFilter.of(name_patterns(entries))
        except ValueError as exc:
            raise AuthError(f'token claim "interfaces.{router}": {exc}') from None
    subject = claims.get("sub")
    exp = claims.get("exp")
    return Grant(
        subject=str(subject) if subject is not None else None,
        routers=allowed,
        interfaces=interfaces,
        expires=float(exp) if isinstance(exp, int | float) else None,
    )


def authorise(settings: AuthSettings, token: str | None) -> Grant:
    """Check a token (from ``?token=`` or ``Authorization: Bearer``) and return its grant."""
    if settings.mode == "none":
        return EVERYTHING
    if not token:
        raise AuthError("a token is required")
    assert settings.jwt_secret is not None
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.reveal(),
            algorithms=["HS256"],
            options={"require": ["exp", "sub", "routers"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("the token has expired") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"the token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidTokenError:
        raise AuthError("the token is invalid (malformed or wrongly signed)") from None
    return _grant(claims)
