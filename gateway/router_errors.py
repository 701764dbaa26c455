"""What can go wrong talking to a router, in the gateway's own terms.

``gateway.routeros`` translates every library and socket error into one of these at its
boundary, so the poller (which decides how long to back off) and the API-SSL checks never see a
library type. No message ever contains a secret.
"""

from __future__ import annotations

__all__ = [
    "RouterAuthFailed",
    "RouterError",
    "RouterProtocolError",
    "RouterTimeout",
    "RouterTlsError",
    "RouterUnavailable",
]


class RouterError(Exception):
    """Something went wrong talking to a router. The message never contains a secret."""


class RouterUnavailable(RouterError):
    """The router did not answer in time, refused or dropped the connection, or ended it."""


class RouterTimeout(RouterUnavailable):
    """The router did not answer within the deadline."""


class RouterAuthFailed(RouterError):
    """The router refused our credentials. Retrying fast would lock the account: back off."""


class RouterProtocolError(RouterError):
    """The router answered something we cannot use (a trap, garbage, an unexpected reply)."""


class RouterTlsError(RouterError):
    """api-ssl could not be set up, or the router is not the one configured (its certificate did
    not verify, or its fingerprint differs). The password was not sent."""
