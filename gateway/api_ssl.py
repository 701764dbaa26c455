"""api-ssl: the TLS client side of a router session, by how the router is trusted.

What is checked follows the router's settings (README, "api-ssl"): with ``tls_ca_file`` the
router's certificate must chain to the file's certificates and name ``host``; with
``tls_fingerprint`` it must be exactly the pinned certificate; with neither, the session is
encrypted but the router is not authenticated, and anonymous Diffie-Hellman suites (api-ssl
without a certificate) are accepted. Either check refuses anonymous suites, and every check runs
before the login, so the password never reaches a router that failed one. TLS 1.2 is the minimum.

Failures are :class:`~gateway.router_errors.RouterTlsError` with what failed and what to check.
This module knows nothing of the RouterOS API (``gateway.routeros`` runs the session on top).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import ssl
from typing import Final

from gateway.config import RouterSettings
from gateway.router_errors import RouterTlsError

__all__ = [
    "ANONYMOUS_ALLOWED_CIPHERS",
    "AUTHENTICATED_CIPHERS",
    "NOT_API_SSL",
    "OLD_TLS",
    "client_tls_context",
    "start_tls",
]

logger = logging.getLogger(__name__)

ANONYMOUS_ALLOWED_CIPHERS: Final = "HIGH:!PSK:!SRP:!aDSS:@SECLEVEL=0"
"""TLS 1.2 suites offered when the router is not authenticated: certificate suites plus the
anonymous DH ones (``ADH-*``, ``AECDH-*``) of api-ssl without a certificate.

Not ``DEFAULT:ADH``: OpenSSL 3's ``DEFAULT`` is ``ALL:!COMPLEMENTOFDEFAULT:!eNULL``, and a ``!``
deletes suites for good, so the anonymous ones (``COMPLEMENTOFDEFAULT``) can no longer be added
after it: the client offers none and a router without a certificate resets the connection.
Security level 0, because OpenSSL refuses unauthenticated suites at every higher level.
"""

AUTHENTICATED_CIPHERS: Final = "HIGH:!PSK:!SRP:!aDSS:!aNULL:!eNULL:@SECLEVEL=2"
"""TLS 1.2 suites offered when the router must prove who it is: anonymous suites excluded. Level
2 also makes a verified chain (``tls_ca_file``) refuse RSA keys under 2048 bits. TLS 1.3 suites
are always authenticated."""

NOT_API_SSL: Final = (
    "is this the api-ssl port (usually 8729)? a plain api port (usually 8728) does not speak "
    "TLS: set tls = false for it"
)
"""The hint for a handshake that fails or never completes without any check involved."""


OLD_TLS: Final = (
    "the router offers only TLS older than 1.2, and the gateway requires TLS 1.2 or later: "
    "upgrade RouterOS on the router (or, only on a network you trust, use its plain api port "
    "with tls = false)"
)
"""The reason for a handshake that failed on the TLS version: the router's, not the port's."""

# OpenSSL's reasons when client and router share no TLS version: the router's alert, or the
# router choosing a version below the client's minimum.
_OLD_TLS_REASONS: Final = frozenset(
    ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "WRONG_SSL_VERSION")
)


def client_tls_context(router: RouterSettings) -> ssl.SSLContext:
    """The TLS client context for ``router``'s api-ssl, by what authenticates the router.

    - ``tls_ca_file``: the certificate must chain to one of the file's certificates (which may
      be the router's own) and name ``host``; anonymous suites are refused.
    - only ``tls_fingerprint``: no chain check (routers' certificates are mostly self-signed);
      the pin is compared after the handshake, before login; anonymous suites are refused.
    - neither: encryption only, nothing checked, anonymous DH allowed (TLS 1.2, since TLS 1.3
      has no anonymous suites).

    TLS 1.2 is the minimum in every case.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if router.tls_ca_pem is not None:
        # PROTOCOL_TLS_CLIENT verifies the chain and the host name by default.
        context.load_verify_locations(cadata=router.tls_ca_pem)
        # A trust anchor need not be self-signed: the router's own certificate, or an
        # intermediate, in the file is enough.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        context.set_ciphers(AUTHENTICATED_CIPHERS)
        return context
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if router.tls_fingerprint is not None:
        context.set_ciphers(AUTHENTICATED_CIPHERS)
    else:
        context.set_ciphers(ANONYMOUS_ALLOWED_CIPHERS)
    return context


async def start_tls(writer: asyncio.StreamWriter, router: RouterSettings, timeout: float) -> None:
    """Upgrade the connection to ``router`` to TLS and run the checks its settings ask for.

    The handshake takes at most ``timeout`` seconds (the caller's own deadline should cover it
    too). Raises :class:`RouterTlsError` for a failed handshake or a fingerprint that differs.
    """
    try:
        await writer.start_tls(
            client_tls_context(router),
            server_hostname=router.host,
            ssl_handshake_timeout=timeout,
        )
    except (ssl.SSLError, ConnectionError) as exc:
        raise _tls_failure(router, exc) from None
    _check_fingerprint(router, writer)
    session = writer.get_extra_info("ssl_object")
    if isinstance(session, ssl.SSLObject):
        logger.debug(
            "%s: api-ssl %s %s, router %s",
            router.id,
            session.version(),
            (session.cipher() or ("?",))[0],
            "authenticated" if router.authenticates_router else "not authenticated",
        )


def _check_fingerprint(router: RouterSettings, writer: asyncio.StreamWriter) -> None:
    """Compare the router's certificate with ``tls_fingerprint``; RouterTlsError when it differs."""
    expected = router.tls_fingerprint
    if expected is None:
        return
    where = f"{router.host}:{router.port}"
    tls = writer.get_extra_info("ssl_object")
    der = tls.getpeercert(binary_form=True) if isinstance(tls, ssl.SSLObject) else None
    if der is None:
        raise RouterTlsError(
            f"{where}: the router presented no certificate, but tls_fingerprint is set"
        )
    received = hashlib.sha256(der).hexdigest()
    if not hmac.compare_digest(received, expected):
        raise RouterTlsError(
            f"{where}: certificate fingerprint mismatch: the router presented SHA-256 "
            f"{_colons(received)}, tls_fingerprint expects {_colons(expected)}"
        )


def _colons(hex_digest: str) -> str:
    upper = hex_digest.upper()
    return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))


def _tls_failure(router: RouterSettings, exc: OSError) -> RouterTlsError:
    """Explain a failed TLS handshake, with what the operator can do about it."""
    where = f"{router.host}:{router.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return RouterTlsError(
            f"{where}: the router's certificate did not verify against tls_ca_file "
            f"{router.tls_ca_file}: {exc.verify_message}"
        )
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or type(exc).__name__).lower().replace("_", " ")
        what = f"TLS handshake failed ({reason})"
        if exc.reason in _OLD_TLS_REASONS:
            return RouterTlsError(f"{where}: {what}: {OLD_TLS}")
    else:
        what = "the router closed the connection during the TLS handshake"
    if router.authenticates_router:
        hint = (
            "with tls_ca_file or tls_fingerprint set, anonymous TLS is refused: does api-ssl "
            "have a certificate (/ip service set api-ssl certificate=...)?"
        )
    else:
        hint = NOT_API_SSL
    return RouterTlsError(f"{where}: {what}: {hint}")
