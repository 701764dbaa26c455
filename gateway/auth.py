"""Viewer authorisation: JWTs minted by the billing system or portal (``[auth] mode = "jwt"``).

A token names the routers its holder may see (``routers``: a list of ids, or ``"*"``) and,
optionally, per router what of each source (``interfaces``, ``queues``, ``hotspot``: router id
-> a list of name globs and ``{"exact": name}`` entries, see ``name_patterns``), so a customer
sees only its own PPPoE interface, queue and hotspot user. In mode ``none`` every viewer sees
everything.

Each scoped source is one claim of the same name (``SCOPED_CLAIMS``). A router the token names
in none of them is visible whole; a router it names in any of them shows, of each source, what
that source's entry allows, and nothing of a source without one (``Grant.filter``): a token
written for interfaces alone never starts showing queues. A subscription's own filter narrows
the token's.

Verification (``Verifier``): the token's header names an algorithm; only the configured keys
pinned to that algorithm are tried (``gateway.signing_keys``), so neither ``none`` nor an HS256
token signed with a public key can pass. ``exp``, ``sub`` and ``routers`` are required; ``nbf``
and ``iat`` are checked when present; ``iss`` and ``aud`` when configured; all times with
``[auth] leeway`` seconds of clock skew.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import jwt

from gateway.config import AuthSettings
from gateway.core.filters import InterfaceFilter, name_patterns
from gateway.core.sources import SOURCES
from gateway.signing_keys import (
    KeySet,
    VerificationKey,
    hmac_key,
    keys_from_jwks,
    public_key_from_pem,
)

__all__ = [
    "BEARER_PROTOCOL",
    "EVERYTHING",
    "MAX_TOKEN",
    "SCOPED_CLAIMS",
    "SUBPROTOCOL",
    "AuthError",
    "Grant",
    "Verifier",
    "authorise",
    "protocol_token",
    "refresh_times",
    "settings_keys",
]

SCOPED_CLAIMS: Final = SOURCES
"""The claims that narrow a source of a router, each named as its source: router id -> name
filter list."""

MAX_TOKEN: Final = 8 * 1024
"""The longest token read, in characters; a longer one is refused before any parsing."""

_ALL: Final = InterfaceFilter.all()
_NOTHING: Final = InterfaceFilter.of(())

SUBPROTOCOL: Final = "gateway.v1"
"""The websocket subprotocol of this protocol (``Sec-WebSocket-Protocol``), version 1."""

BEARER_PROTOCOL: Final = "bearer."
"""The prefix of the ``Sec-WebSocket-Protocol`` value that carries a token: a client offers
``gateway.v1, bearer.<token>`` and the server answers ``gateway.v1``, never the token.

Why a subprotocol at all: a browser's ``WebSocket`` cannot set an ``Authorization`` header, and
the alternative, ``?token=`` in the URL, ends up in access logs, browser history and the
``Referer`` of proxies. A JWT's characters (letters, digits, ``-``, ``_``, ``.``) are all
allowed in a subprotocol token (RFC 6455 section 4.1, RFC 7230 ``tchar``)."""


class AuthError(Exception):
    """The token is missing, malformed, wrongly signed, expired or ill-shaped. The message says
    which, and never holds the token."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What one viewer may see. ``routers`` None means every router.

    ``scopes`` maps a source (``"interfaces"``, ``"queues"``, ``"hotspot"``) to router id ->
    the filter the token sets on that source of that router (see ``filter``). ``expires`` is
    the token's ``exp`` (Unix seconds), None in mode ``none``.
    """

    subject: str | None = None
    routers: frozenset[str] | None = None
    scopes: Mapping[str, Mapping[str, InterfaceFilter]] = field(default_factory=dict)
    expires: float | None = None

    def allows(self, router: str) -> bool:
        return self.routers is None or router in self.routers

    @property
    def restricted(self) -> bool:
        """Whether this is a customer's grant: its token scopes rows of some source. Such a
        viewer is never shown the router's error text (it names the router's address, API port
        and user), only that the router is unavailable."""
        return any(self.scopes.values())

    def filter(self, router: str, source: str = "interfaces") -> InterfaceFilter:
        """The token's filter on ``source`` of ``router``: its entry for them; else everything
        when the token scopes no source of that router, nothing when it scopes another one."""
        found = self.scopes.get(source, {}).get(router)
        if found is not None:
            return found
        if any(router in scoped for scoped in self.scopes.values()):
            return _NOTHING
        return _ALL

    def interface_filter(self, router: str) -> InterfaceFilter:
        """The token's interface filter for a router (see ``filter``)."""
        return self.filter(router, "interfaces")

    def within(self, wider: Grant) -> bool:
        """Whether this grant shows nothing ``wider`` does not: the same or fewer routers, and on
        each, for every scoped source, a filter within ``wider``'s.

        Judged conservatively where filters are globs (``InterfaceFilter.within``): a narrower
        token written with different globs may be refused, never a wider one accepted.
        """
        if wider.routers is not None and (
            self.routers is None or not self.routers <= wider.routers
        ):
            return False
        # Routers ``wider`` shows whole in every source need no look; the others are those it
        # scopes (``filter``: a source without an entry there shows nothing).
        scoped = {router for by_router in wider.scopes.values() for router in by_router}
        routers = scoped if self.routers is None else self.routers & scoped
        for router in routers:
            for source in SCOPED_CLAIMS:
                if not self.filter(router, source).within(wider.filter(router, source)):
                    return False
        return True


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
    scopes: dict[str, dict[str, InterfaceFilter]] = {}
    for claim in SCOPED_CLAIMS:
        raw = claims.get(claim, {})
        if not isinstance(raw, dict):
            raise AuthError(f'token claim "{claim}" must map router ids to lists of name globs')
        filters: dict[str, InterfaceFilter] = {}
        for router, entries in raw.items():
            try:
                filters[router] = InterfaceFilter.of(name_patterns(entries))
            except ValueError as exc:
                raise AuthError(f'token claim "{claim}.{router}": {exc}') from None
        if filters:
            scopes[claim] = filters
    subject = claims.get("sub")
    exp = claims.get("exp")
    return Grant(
        subject=str(subject) if subject is not None else None,
        routers=allowed,
        scopes=scopes,
        expires=float(exp) if isinstance(exp, int | float) else None,
    )


def refresh_times(
    expires: float, now: float, refresh_before: float, leeway: float
) -> tuple[float, float]:
    """When to ask for a new token and when to close, as seconds from ``now`` (Unix times in).

    The ask (``refresh_needed``) comes ``refresh_before`` seconds before ``expires``, or at half
    the token's remaining life when that is later (a short-lived token is not asked for again
    the moment it arrives), and at once for a token already past ``exp`` within the leeway. The
    close comes when a handshake would refuse the token: ``expires`` plus the ``leeway``.
    """
    remaining = expires - now
    ask = max(0.0, remaining - refresh_before, remaining / 2)
    return ask, max(ask, remaining + leeway)


def protocol_token(header: str | None) -> str | None:
    """The token a client offered as ``bearer.<token>`` in ``Sec-WebSocket-Protocol`` (a
    comma-separated list), or None when it offered none."""
    if not header:
        return None
    for value in header.split(","):
        value = value.strip()
        if value.startswith(BEARER_PROTOCOL):
            return value[len(BEARER_PROTOCOL) :]
    return None


def settings_keys(settings: AuthSettings) -> KeySet:
    """The keys the settings configure, as read at start-up: the HS256 secret, the public key
    file's key and the JWKS file's keys (``gateway.keyfiles`` re-reads the files later)."""
    keys: list[VerificationKey] = []
    if settings.jwt_secret is not None:
        keys.append(hmac_key(settings.jwt_secret.reveal()))
    if settings.public_key_pem is not None:
        keys.append(public_key_from_pem(settings.public_key_pem))
    if settings.jwks_json is not None:
        keys.extend(keys_from_jwks(settings.jwks_json))
    return KeySet(tuple(keys))


# PyJWT's refusals in words a token's holder (and the operator reading the close reason) can act
# on; checked in order, so a subclass comes before its base.
_REFUSALS: Final[tuple[tuple[type[jwt.PyJWTError], str], ...]] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet (nbf or iat in the future)"),
    (jwt.InvalidAudienceError, "the token is for another audience (aud)"),
    (jwt.InvalidIssuerError, "the token is from another issuer (iss)"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
)


class Verifier:
    """Checks tokens against the keys of the moment: ``keys()`` is asked on every check, so a
    key file re-read by ``gateway.keyfiles`` takes effect at once."""

    __slots__ = ("_keys", "settings")

    def __init__(self, settings: AuthSettings, keys: Callable[[], KeySet] | None = None) -> None:
        self.settings = settings
        if keys is None:
            fixed = settings_keys(settings) if settings.mode == "jwt" else KeySet()

            def keys() -> KeySet:
                return fixed

        self._keys = keys

    @property
    def enabled(self) -> bool:
        """Whether tokens are checked at all (mode ``jwt``)."""
        return self.settings.mode == "jwt"

    def authorise(self, token: str | None) -> Grant:
        """The grant of a token (from any transport); ``AuthError`` saying why it is refused.

        In mode ``none`` every viewer gets ``EVERYTHING``, whatever it sends.
        """
        if not self.enabled:
            return EVERYTHING
        if not token:
            raise AuthError("a token is required")
        if len(token) > MAX_TOKEN:
            raise AuthError(f"the token is longer than {MAX_TOKEN} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("the token is invalid (malformed)") from None
        algorithm = header.get("alg")
        kid = header.get("kid")
        keyset = self._keys()
        if not isinstance(algorithm, str) or algorithm not in keyset.algorithms:
            accepted = ", ".join(keyset.algorithms) or "none configured"
            raise AuthError(
                f"the token's algorithm {str(algorithm)[:20]!r} is not accepted here "
                f"(accepted: {accepted})"
            )
        candidates = keyset.candidates(algorithm, kid if isinstance(kid, str) else None)
        if not candidates:
            raise AuthError(f"the token's key id {str(kid)[:40]!r} is not among the gateway's keys")
        claims = self._decode(token, candidates)
        return _grant(claims)

    def _decode(self, token: str, candidates: tuple[VerificationKey, ...]) -> dict[str, Any]:
        """The claims, checked with the first candidate key whose signature verifies."""
        settings = self.settings
        refusal: jwt.PyJWTError | None = None
        for key in candidates:
            try:
                return jwt.decode(
                    token,
                    key.key,
                    # Pinned: this key verifies its own algorithm and nothing else.
                    algorithms=[key.algorithm],
                    options={"require": ["exp", "sub", "routers"]},
                    audience=settings.audience or None,
                    issuer=settings.issuer or None,
                    leeway=settings.leeway,
                )
            except jwt.InvalidSignatureError as exc:
                refusal = exc  # perhaps another key of the same algorithm (a rotation)
            except jwt.PyJWTError as exc:
                refusal = exc
                break  # signed by this key, but its claims are refused
        assert refusal is not None
        raise _refused(refusal)


def _refused(exc: jwt.PyJWTError) -> AuthError:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return AuthError(f"the token lacks the {exc.claim!r} claim")
    for kind, text in _REFUSALS:
        if isinstance(exc, kind):
            return AuthError(text)
    return AuthError("the token is invalid (malformed or wrongly signed)")


def authorise(settings: AuthSettings, token: str | None) -> Grant:
    """Check a token against the settings' own keys (no key file reloads); see ``Verifier``."""
    return Verifier(settings).authorise(token)
