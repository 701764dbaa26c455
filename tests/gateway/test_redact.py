"""Secrets in log records: redacted by shape and by known value, whoever logs them and however."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from librouteros.protocol import log as librouteros_log

import gateway.routeros  # noqa: F401 - importing it guards the librouteros logger
from gateway.redact import MASK, RedactingFilter, protect_handlers, redact

PASSWORD = "Zq9ü-Kv3ß#Wx7 q"
RESPONSE = "00" + "6f1ed002ab5595859014ebf0951522d9"


def fragments(secret: str, size: int = 4) -> set[str]:
    """Every piece of ``secret`` that is ``size`` characters long."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        for piece in fragments(secret):
            assert piece not in text, f"{piece!r} of a secret in {text!r}"


@pytest.fixture
def wire_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of the librouteros logger, at DEBUG."""
    with caplog.at_level(logging.DEBUG, logger="librouteros"):
        yield caplog


def test_librouteros_login_words_are_redacted(wire_log: pytest.LogCaptureFixture) -> None:
    """The library's own DEBUG lines of a login show the words but never the password or the
    challenge response; other words stay readable."""
    librouteros_log("<---", "/login", "=name=admin", f"=password={PASSWORD}")
    librouteros_log("--->", "!done", "=ret=1f2e3d4c5b6a79881f2e3d4c5b6a7988")
    librouteros_log("<---", "/login", "=name=admin", f"=response={RESPONSE}")
    lines = [record.getMessage() for record in wire_log.records]
    assert "<--- '=password=***'" in lines
    assert "<--- '=response=***'" in lines
    assert "<--- '=name=admin'" in lines
    assert "---> '=ret=1f2e3d4c5b6a79881f2e3d4c5b6a7988'" in lines
    assert_clean("\n".join(lines), PASSWORD, RESPONSE)


def test_lazily_formatted_messages_are_redacted(wire_log: pytest.LogCaptureFixture) -> None:
    """A message built from ``args`` is redacted as formatted, and keeps no raw args."""
    logger = logging.getLogger("librouteros")
    logger.debug("%s %r", "<---", f"=password={PASSWORD}")
    logger.debug("sent %s", f"/login =name=admin =password={PASSWORD}")
    for record in wire_log.records:
        assert record.args is None
        assert_clean(record.getMessage(), PASSWORD)
        assert MASK in record.getMessage()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<--- '=password=a b'", "<--- '=password=***'"),
        ('<--- "=password=it\'s"', "<--- '=password=***'"),
        ("<--- '=secret=x'", "<--- '=secret=***'"),
        ("<--- '=wpa2-pre-shared-key=x'", "<--- '=wpa2-pre-shared-key=***'"),
        ("/login =name=a =password=p w", "/login =name=a =password=***"),
        ("GET /ws?token=abc.def&x=1 HTTP/1.1", "GET /ws?token=***&x=1 HTTP/1.1"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ("got eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln here", "got *** here"),
        ("<--- '=.proplist=name,type'", "<--- '=.proplist=name,type'"),
        ("core-1: down: connection refused", "core-1: down: connection refused"),
    ],
)
def test_secret_shapes(text: str, expected: str) -> None:
    """Values shaped like secrets are masked; everything else is left as it was."""
    assert redact(text) == expected


def test_known_secrets_in_any_spelling() -> None:
    """A known secret is masked as is and as repr, JSON or a URL would spell it."""
    spelled = [PASSWORD, repr(PASSWORD), ascii(PASSWORD), json.dumps(PASSWORD), quote(PASSWORD)]
    for text in spelled:
        assert_clean(redact(f"value: {text}", [PASSWORD]), PASSWORD)


def test_handler_filter_covers_exceptions_and_extras() -> None:
    """Through a protected handler, a known secret is gone from the message, the traceback and
    ``extra`` fields, and an unformattable message is not printed raw."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(request_line)s %(headers)s"))
    protect_handlers([PASSWORD], [handler])
    logger = logging.getLogger("tests.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError(f"bad {PASSWORD}")
        except ValueError:
            logger.exception(
                "failed with %s",
                PASSWORD,
                extra={"request_line": PASSWORD, "headers": {"Authorization": f"Basic {PASSWORD}"}},
            )
        logger.error("broken %s %s", PASSWORD, extra={"request_line": "-", "headers": {}})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    out = stream.getvalue()
    assert "ValueError: bad ***" in out
    assert "<a log message that could not be formatted>" in out
    assert_clean(out, PASSWORD)


def test_protect_handlers_replaces_its_own_filter() -> None:
    """Calling it again (once settings are loaded) widens the filter instead of stacking."""
    handler = logging.NullHandler()
    protect_handlers([], [handler])
    protect_handlers([PASSWORD], [handler])
    [only] = handler.filters
    assert isinstance(only, RedactingFilter)
    assert only.known == {PASSWORD}
