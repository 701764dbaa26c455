"""Log output: readable lines or JSON objects, and the audit line of each websocket session.

``--log-format json`` (or ``server.log_format = "json"``) writes one JSON object per line, for
log pipelines (Kubernetes, Loki, Elasticsearch): ``time`` (UTC, ISO 8601), ``level``,
``logger``, ``message``, any structured fields of the record (an audit line's ``subject``,
``client``...), and ``exception`` when there is one. The redaction filters
(``gateway.redact``) run before any formatter, so a JSON line carries no more than a text line.

The audit line (logger ``gateway.audit``, INFO) is written once per websocket when it ends,
admitted or refused: who (the token's ``sub``), from where (the client address, see
``server.trusted_proxies``), how the token came (``token_via``), what it watched, for how
long, how it ended (the close code, and for a refusal the reason), and the messages each way.
Never the token.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Sequence
from typing import Final

import orjson
from aiohttp.http_exceptions import HttpProcessingError

from gateway.config import LogFormat

__all__ = [
    "AUDIT",
    "TEXT_FORMAT",
    "JsonFormatter",
    "audit_session",
    "configure",
    "formatter",
    "quiet_bad_requests",
    "use_format",
]

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The text format: one line a record."""

AUDIT: Final = logging.getLogger("gateway.audit")
"""The audit log: one INFO line per websocket session."""

# Attributes every LogRecord has; any other came from ``extra=`` and is a structured field.
_RECORD_FIELDS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and name not in data:
                data[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return orjson.dumps(data, default=str).decode()


# Control characters as Python writes them in a string literal ("\n" -> "\\n"), DEL too, and
# every other character str.splitlines() ends a line at (NEL, LINE and PARAGRAPH SEPARATOR),
# which Python leaves as they are: those as \x85, \u2028, \u2029.
_ESCAPES: Final = {
    **{c: repr(chr(c))[1:-1] for c in (*range(32), 127)},
    0x85: "\\x85",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` lines in which a message's control characters and line separators are
    escaped: a newline (or U+2028, or any character ``str.splitlines`` splits at) in a token's
    subject, a router's name or a client's message cannot start a line of its own and forge a
    log record. A traceback (appended after the message) keeps its lines."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_ESCAPES)


_HTTP: Final = logging.getLogger("gateway.http")


class BadRequestFilter(logging.Filter):
    """On aiohttp's server logger: a request aiohttp could not parse (a bad header, method,
    length, a line too long) becomes one DEBUG line of ``gateway.http`` instead of an ERROR with
    a traceback. Anyone can send those, so they must not let a client fill the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        _HTTP.debug("bad HTTP request from %s: %s", peer, exc)
        return False


def quiet_bad_requests() -> None:
    """Put a :class:`BadRequestFilter` on aiohttp's server logger, once."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadRequestFilter) for f in server.filters):
        server.addFilter(BadRequestFilter())


def formatter(fmt: LogFormat) -> logging.Formatter:
    """The formatter of a log format."""
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure(level: str, fmt: LogFormat) -> None:
    """Log to stderr at ``level`` in ``fmt`` (the command line's set-up)."""
    logging.basicConfig(level=level.upper(), format=TEXT_FORMAT)
    use_format(fmt)


def use_format(fmt: LogFormat, handlers: Iterable[logging.Handler] | None = None) -> None:
    """Switch ``handlers`` (default: the root logger's) to ``fmt``; their filters stay."""
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        handler.setFormatter(formatter(fmt))


def audit_session(
    *,
    subject: str | None,
    client: str,
    token_via: str,
    routers: Sequence[str],
    duration: float,
    close_code: int,
    messages_in: int,
    messages_out: int,
    reason: str = "",
) -> None:
    """Write one websocket session's audit line (``duration`` in seconds)."""
    fields: dict[str, object] = {
        "event": "websocket_session",
        "subject": subject,
        "client": client,
        "token_via": token_via,
        "routers": list(routers),
        "duration_s": round(duration, 3),
        "close_code": close_code,
        "messages_in": messages_in,
        "messages_out": messages_out,
    }
    if reason:
        fields["reason"] = reason
    AUDIT.info(
        "websocket session ended: subject=%s client=%s token_via=%s routers=%s "
        "duration=%.1fs close=%d in=%d out=%d%s",
        subject if subject is not None else "-",
        client,
        token_via,
        ",".join(routers) or "-",
        duration,
        close_code,
        messages_in,
        messages_out,
        f" reason={reason!r}" if reason else "",
        extra=fields,
    )
