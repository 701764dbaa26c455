"""Unexpected errors in long-lived tasks: one traceback per kind, not one per tick."""

from __future__ import annotations

import logging

import pytest

from gateway.faults import KINDS, UnexpectedErrors

logger = logging.getLogger("tests.faults")


def _fail(kind: type[Exception]) -> Exception:
    try:
        raise kind("boom")
    except Exception as exc:  # noqa: BLE001 - handed to the reporter, as a task would
        return exc


def _other_line() -> Exception:
    try:
        raise KeyError("raised on another line")
    except KeyError as exc:
        return exc


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info is not None and r.name == logger.name]


def test_each_kind_gets_one_traceback_until_recovery(caplog: pytest.LogCaptureFixture) -> None:
    """A fault that repeats every tick is logged with its traceback once, then at DEBUG."""
    caplog.set_level(logging.DEBUG, logger=logger.name)
    errors = UnexpectedErrors(logger, "core-1: poll loop")
    for _ in range(5):
        errors.report(_fail(KeyError))
    errors.report(_fail(TypeError))
    errors.report(_other_line())
    logged = tracebacks(caplog)
    assert [r.levelno for r in logged] == [logging.ERROR] * 3
    assert [r.exc_info[0] for r in logged if r.exc_info] == [KeyError, TypeError, KeyError]
    assert "core-1: poll loop: unexpected KeyError" in logged[0].getMessage()
    assert sum("again" in r.getMessage() for r in caplog.records) == 4
    errors.recovered()
    errors.report(_fail(KeyError))
    assert len(tracebacks(caplog)) == 4


def test_kinds_remembered_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    """Past the limit of kinds, new ones are logged at DEBUG only (bounded memory and log)."""
    caplog.set_level(logging.DEBUG, logger=logger.name)
    errors = UnexpectedErrors(logger, "task")
    kinds = [type(f"Error{i}", (Exception,), {}) for i in range(KINDS + 5)]
    for kind in kinds:
        errors.report(_fail(kind))
    assert len(tracebacks(caplog)) == KINDS
