"""Keeping secrets out of log lines, whoever writes them.

A secret here is a router password, the legacy login's challenge response (an MD5 over the
password that allows an offline guess of it), the JWT secret, a viewer's token, or a Redis
password. No log line at any level may carry one, from our code or from a library's. Three
layers, each closing a gap that the one before it cannot:

1. **Our own code never formats a secret.** Settings hold secrets in :class:`~gateway.config.Secret`
   (which prints ``***``), and errors are built without them (``routeros.py`` reports an encoding
   problem of a password without its text). This layer is where a secret would first be written,
   so it is the one that has to hold for every output: frames, REST bodies, metrics, exit messages.
2. **Libraries that log what they send or receive are filtered at their own logger.** librouteros
   logs every API word at DEBUG (``<--- '=password=...'``, ``<--- '=response=00...'``),
   aiohttp's access log writes request lines whose URL can carry ``?token=`` (and, in a custom
   format, headers such as ``Authorization`` or ``Sec-WebSocket-Protocol``), and aiohttp's
   websocket logger names the subprotocols a client offered (``bearer.<token>``). A
   :class:`RedactingFilter` sits on those loggers themselves (``gateway.routeros`` installs it
   on ``librouteros`` when it is imported, ``create_app`` on aiohttp's ``AIOHTTP_LOGGERS``). A
   filter on the logger, not on a handler, runs before any handler sees the record, so it holds
   whoever configures the handlers: the CLI, an application that embeds ``create_app`` with its
   own logging, or a test's capture. It redacts by *shape* (the value of an API word named like
   a secret, ``token=`` in a query, ``Bearer ...``, ``bearer.<token>``, anything shaped like a
   JWT), so it needs no list of secrets and also hides secrets the gateway never knew (a
   ``/ppp/secret`` row, a stranger's token).
3. **A last line of defence on the CLI's handlers** also redacts the *known* secret values from
   the configuration (and their escaped forms) wherever they appear, for a path nobody foresaw.
   An application embedding the gateway can put :func:`protect_handlers` on its own handlers.

Every layer works on the *formatted* message (``record.getMessage()``), so a message formatted
lazily from ``args`` is covered as well as a pre-formatted one, and also on the exception text,
the stack text and string ``extra`` fields (aiohttp passes the request line as one), so no
formatter can bring a secret back.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import quote, quote_plus, urlsplit

from gateway.config import Settings

__all__ = [
    "AIOHTTP_LOGGERS",
    "MASK",
    "RedactingFilter",
    "install_filter",
    "protect_handlers",
    "redact",
    "settings_secrets",
]

AIOHTTP_LOGGERS: Final = (
    "aiohttp.access",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
    "aiohttp.internal",
)
"""aiohttp's loggers that can see a request's URL or headers (a filter on a logger does not
reach its children, so each gets its own)."""

MASK: Final = "***"
"""What a redacted value is replaced with."""

MIN_KNOWN: Final = 4
"""Known secrets shorter than this are not searched for as text: three characters cannot be told
apart from ordinary words (they are still redacted wherever their shape gives them away)."""

# A RouterOS attribute name that holds a secret: the login's password and challenge response, and
# the menus' secrets, keys, passphrases and tokens (``/ppp/secret``, WireGuard, IPsec, wireless).
_SECRET_NAME: Final = (
    r"(?:response|[\w.-]*?(?:password|passwd|passphrase|secret|key|token|psk)[\w.-]*)"
)

# librouteros logs one word per record, as ``<--- '=password=abc'``: the word's Python repr.
_WIRE_WORD: Final = re.compile(r"(?P<head>(?:<---|--->) )(?P<literal>(?P<q>['\"]).*(?P=q))", re.S)
_SECRET_WORD: Final = re.compile(rf"=(?P<name>{_SECRET_NAME})=", re.I)

# Anywhere else: an API word with a secret's name runs to the end of its line (a value may hold
# spaces, so nothing shorter is safe); ``name=value`` pairs (query strings, key=value logs) run to
# the next separator; bearer credentials; and JWTs, whose header always starts ``eyJ`` (``{"``).
_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(rf"(=(?:{_SECRET_NAME})=)[^\n]*", re.I), rf"\g<1>{MASK}"),
    (
        re.compile(
            r"((?<![\w.-])(?:access_token|token|jwt|password|passwd|secret)=)[^\s&;,'\"]+", re.I
        ),
        rf"\g<1>{MASK}",
    ),
    (re.compile(r"(\bBearer\s+)[^\s,;'\"]+", re.I), rf"\g<1>{MASK}"),
    # A token offered as a websocket subprotocol ("gateway.v1, bearer.<token>").
    (re.compile(r"(\bbearer\.)[^\s,;'\"\]]+", re.I), rf"\g<1>{MASK}"),
    (re.compile(r"eyJ[\w-]*\.[\w-]*(?:\.[\w-]*)?"), MASK),
)

# Attributes every LogRecord has; any other string attribute came from ``extra=`` and is printed
# by formatters that name it (aiohttp's access log passes the request line that way).
_RECORD_FIELDS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}

_FORMATTER: Final = logging.Formatter()


def _escaped_forms(secret: str) -> set[str]:
    """The ways a log line can spell a secret: as is, and as repr, JSON or a URL spell it."""
    return {
        secret,
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }


def _wire_word(match: re.Match[str]) -> str | None:
    """librouteros' one-word line with a secret word's value masked; None if it is not one."""
    try:
        word = ast.literal_eval(match["literal"])
    except (ValueError, SyntaxError):
        return None
    if not isinstance(word, str):
        return None
    secret = _SECRET_WORD.match(word)
    if secret is None:
        return match.group(0)
    masked = "=" + secret["name"] + "=" + MASK
    return match["head"] + repr(masked)


class _Redactor:
    """Text in, text out: every secret shape, and every known secret, replaced by ``***``."""

    __slots__ = ("_known",)

    def __init__(self, known: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in known:
            if len(secret) >= MIN_KNOWN:
                forms |= {f for f in _escaped_forms(secret) if len(f) >= MIN_KNOWN}
        # Longest first, so a secret is replaced whole before a shorter one inside it could be.
        ordered = sorted(forms, key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        wire = _WIRE_WORD.fullmatch(text)
        redacted = _wire_word(wire) if wire is not None else None
        if redacted is None:
            redacted = text
            for pattern, replacement in _PATTERNS:
                redacted = pattern.sub(replacement, redacted)
        if self._known is not None:
            redacted = self._known.sub(MASK, redacted)
        return redacted


def redact(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with secrets replaced by ``***``: by their shape, and the ``known`` values.

    Shapes: the value of a RouterOS API word named like a secret (``=password=``, ``=response=``,
    ``=secret=``, ``...-key=``), ``token=``/``password=`` pairs as in a query string, ``Bearer``
    credentials and JWTs.
    """
    return _Redactor(known)(text)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites a record so that it carries no secret; it drops nothing.

    It redacts the formatted message (so lazily formatted ``args`` are covered: the record then
    carries the redacted text and no ``args``), the exception and stack text, and string fields
    added with ``extra=``. ``known`` are secret values to find wherever they appear, on top of the
    shapes that :func:`redact` recognises. Put it on a logger (covers every handler) or on a
    handler (covers what that handler writes, from any logger).
    """

    def __init__(self, known: Iterable[str] = ()) -> None:
        super().__init__()
        self.known = frozenset(known)
        self._redact: Callable[[str], str] = _Redactor(self.known)

    def filter(self, record: logging.LogRecord) -> bool:
        redact_text = self._redact
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - logging would print msg and args raw: keep neither
            record.msg, record.args = "<a log message that could not be formatted>", None
        else:
            clean = redact_text(message)
            if clean != message:
                record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            # Formatted here, as the default formatter would, so the handler prints our text.
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_FIELDS:
                setattr(record, name, _redact_value(value, redact_text))
        return True


def _redact_value(value: object, redact_text: Callable[[str], str], depth: int = 0) -> object:
    """An ``extra`` field with its text redacted, inside dicts, lists and tuples too (aiohttp
    passes request headers as a dict); other values are left alone."""
    if isinstance(value, str):
        return redact_text(value)
    if depth >= 3:
        return value
    # Exact types only: a subclass (a namedtuple, a mapping type) may not rebuild this way.
    if type(value) is dict:
        return {k: _redact_value(v, redact_text, depth + 1) for k, v in value.items()}
    if type(value) is list:
        return [_redact_value(v, redact_text, depth + 1) for v in value]
    if type(value) is tuple:
        return tuple(_redact_value(v, redact_text, depth + 1) for v in value)
    return value


def install_filter(logger: logging.Logger) -> RedactingFilter:
    """Put a shape-only :class:`RedactingFilter` on ``logger`` once (later calls find it)."""
    for existing in logger.filters:
        if isinstance(existing, RedactingFilter) and not existing.known:
            return existing
    added = RedactingFilter()
    logger.addFilter(added)
    return added


def settings_secrets(settings: Settings) -> frozenset[str]:
    """Every secret value in the settings: router passwords, the JWT secret, a Redis password."""
    found = {router.password.reveal() for router in settings.routers}
    if settings.auth.jwt_secret is not None:
        found.add(settings.auth.jwt_secret.reveal())
    if settings.cluster.redis_url:
        try:
            redis_password = urlsplit(settings.cluster.redis_url).password
        except ValueError:
            redis_password = None
        if redis_password:
            found.add(redis_password)
    return frozenset(s for s in found if s)


def protect_handlers(
    known: Iterable[str] = (), handlers: Iterable[logging.Handler] | None = None
) -> None:
    """Put a :class:`RedactingFilter` for ``known`` on ``handlers`` (default: the root logger's).

    A filter this function put there before is replaced, so calling it again once the settings
    are loaded widens the protection to their secrets.
    """
    targets = list(logging.getLogger().handlers if handlers is None else handlers)
    for handler in targets:
        for existing in list(handler.filters):
            if isinstance(existing, RedactingFilter):
                handler.removeFilter(existing)
        handler.addFilter(RedactingFilter(known))
