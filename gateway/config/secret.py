"""Values that never print themselves: a :class:`Secret`, and a URL shown without its password.

Router passwords, the JWT secret and Redis URLs (which may carry a password) pass through the
configuration, its error messages and the settings' ``repr``; these two keep them out of all of
them.
"""

import hmac
from urllib.parse import urlsplit

__all__ = ["Secret", "redact_url"]


class Secret:
    """A secret string that does not print itself.

    ``repr()``, ``str()`` and f-strings give ``Secret('***')``; only :meth:`reveal` gives the
    value, so a secret reaches a log line, an error message or a frame only by someone writing
    ``reveal()`` on purpose. Secrets compare by value (in constant time) so settings stay
    comparable.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        """Wrap ``value``."""
        self._value = value

    def reveal(self) -> str:
        """The secret's value, for the one place that needs it (a login, a signature check)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
