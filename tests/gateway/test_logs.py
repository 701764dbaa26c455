"""Log output: JSON lines for pipelines, redacted like text lines; the format follows the
command line, else the configuration."""

from __future__ import annotations

import io
import json
import logging
import signal
from pathlib import Path

import aiohttp
import pytest

from gateway import process
from gateway.logs import JsonFormatter, audit_session, formatter
from gateway.redact import RedactingFilter
from tests.support.gateway import PASSWORD, emulator, receive, running
from tests.support.timing import seconds
from tests.support.tokens import hs256


def capture(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    """A logger writing to a string in ``fmt``, through the redaction filter as the CLI has it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter("json" if fmt == "json" else "text"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"test.logs.{fmt}.{id(out)}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, out


def test_json_lines_carry_time_level_logger_message_and_fields() -> None:
    """One object per line, with the record's structured fields and its exception."""
    logger, out = capture("json")
    logger.info("hello %s", "world", extra={"client": "192.0.2.1", "routers": ["a"]})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("it broke")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "INFO"
    assert first["message"] == "hello world"
    assert first["client"] == "192.0.2.1"
    assert first["routers"] == ["a"]
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR"
    assert "ValueError: boom" in second["exception"]


def test_json_lines_are_redacted_as_text_lines_are() -> None:
    """A token or secret in a message or a field is masked before the JSON is written."""
    logger, out = capture("json")
    token = hs256()
    logger.warning("GET /ws?token=%s", token, extra={"header": f"Bearer {token}"})
    line = out.getvalue()
    assert token not in line
    record = json.loads(line)
    assert record["message"] == "GET /ws?token=***"
    assert record["header"] == "Bearer ***"


def test_the_audit_line_reads_as_text_and_as_fields() -> None:
    """Text: one line with every field; JSON: the same as separate keys."""
    text_logger, text = capture("text")
    json_logger, data = capture("json")
    audit = logging.getLogger("gateway.audit")
    level = audit.level
    audit.setLevel(logging.INFO)
    for logger in (text_logger, json_logger):
        audit.addHandler(logger.handlers[0])
        audit.propagate = False
        try:
            audit_session(
                subject="cust-1",
                client="198.51.100.7",
                token_via="message",
                routers=["core", "edge"],
                duration=12.34,
                close_code=1000,
                messages_in=3,
                messages_out=42,
            )
        finally:
            audit.removeHandler(logger.handlers[0])
            audit.propagate = True
    audit.setLevel(level)
    assert (
        "websocket session ended: subject=cust-1 client=198.51.100.7 token_via=message "
        "routers=core,edge duration=12.3s close=1000 in=3 out=42"
    ) in text.getvalue()
    record = json.loads(data.getvalue())
    assert {k: record[k] for k in ("subject", "client", "routers", "close_code")} == {
        "subject": "cust-1",
        "client": "198.51.100.7",
        "routers": ["core", "edge"],
        "close_code": 1000,
    }
    assert record["duration_s"] == 12.34
    assert (record["messages_in"], record["messages_out"]) == (3, 42)


def test_a_record_without_fields_is_plain() -> None:
    """Nothing but the four keys for an ordinary line."""
    record = logging.LogRecord("gateway", logging.INFO, __file__, 1, "plain", None, None)
    assert set(json.loads(JsonFormatter().format(record))) == {"time", "level", "logger", "message"}


async def test_serve_logs_json_when_the_configuration_says_so(tmp_path: Path) -> None:
    """server.log_format = "json" turns every log line of gateway serve into a JSON object, the
    audit line of a session and the drain at SIGTERM included."""
    emu = emulator()
    token = hs256()
    async with running(emu):
        config = tmp_path / "gw.toml"
        config.write_text(
            '[server]\nhost = "127.0.0.1"\nport = 0\nshutdown_grace = 3.0\nlog_format = "json"\n'
            f'[[routers]]\nid = "core"\nhost = "127.0.0.1"\nport = {emu.port}\n'
            f'username = "admin"\npassword = "{PASSWORD}"\n'
        )
        async with process.started(
            process.command("serve", "--config", str(config)),
            ready=process.GATEWAY_READY,
            deadline=seconds(10),
            merged=True,
        ) as child:
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(f"{child.url}/ws?token={token}")
                assert (await receive(ws))["type"] == "hello"
                await ws.close()
            await child.expect(r'"logger":"gateway.audit"', seconds(5))
            child.proc.send_signal(signal.SIGTERM)
            assert await child.proc.wait() == 0
            lines = list(child.lines["stdout"])
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert {"gateway.audit", "gateway"} <= {r["logger"] for r in logged}
    audit = next(r for r in logged if r["logger"] == "gateway.audit")
    assert (audit["client"], audit["token_via"], audit["close_code"]) == (
        "127.0.0.1",
        "query",
        1000,
    )
    others = [line for line in lines if not line.startswith("{")]
    assert all(line.startswith("gateway listening on") for line in others), others
    assert token not in "\n".join(lines)


def test_a_text_line_cannot_be_forged_by_what_it_quotes() -> None:
    """A newline in a token's subject (or any quoted input) stays inside its line, escaped; a
    traceback still follows on lines of its own."""
    logger, out = capture("text")
    forged = "evil\n2026-11-30 15:00:00,000 WARNING gateway.audit: forged line\r\x1b[2J"
    logger.info("websocket session ended: subject=%s", forged)
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    lines = out.getvalue().splitlines()
    assert lines[0].endswith(
        "subject=evil\\n2026-11-30 15:00:00,000 WARNING gateway.audit: forged line\\r\\x1b[2J"
    )
    assert lines[1].endswith("failed")
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"])
def test_a_unicode_line_separator_stays_inside_its_line(separator: str) -> None:
    """Every character a line splitter may break at (U+2028 too) is escaped in a text line."""
    logger, out = capture("text")
    logger.info("websocket session ended: subject=%s", f"a{separator}forged")
    [line] = out.getvalue().splitlines()
    assert line.endswith("subject=a" + separator.encode("unicode_escape").decode() + "forged")
