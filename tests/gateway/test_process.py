"""The one way tests and the load test run a child process: ready line, output, deadlines, end."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from gateway import process
from tests.support.timing import seconds

# A stand-in for a server: prints where it "listens", logs to stderr, then waits for a signal
# (with an argument, it ignores SIGTERM from before it says it listens).
SERVER = """
import signal, sys, time
if len(sys.argv) > 1:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("starting", flush=True)
print("gateway listening on http://127.0.0.1:8123/", flush=True)
print("a log line", file=sys.stderr, flush=True)
while True:
    time.sleep(1)
"""


def python(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


async def test_started_waits_for_the_ready_line_and_reads_url_port_and_output() -> None:
    """The child's URL and port come from its ready line; both streams are kept."""
    async with process.started(
        python(SERVER), ready=process.GATEWAY_READY, deadline=seconds(10)
    ) as child:
        assert child.url == "http://127.0.0.1:8123"
        assert child.port == 8123
        await child.expect("a log line", seconds(5), stream="stderr")
        assert child.output() == "starting\ngateway listening on http://127.0.0.1:8123/\n"
    assert child.returncode == -signal.SIGKILL


async def test_a_child_that_exits_before_its_ready_line_fails_naming_its_output() -> None:
    """A start-up failure names the child, the exit code and what it printed."""
    script = "import sys; print('no config', file=sys.stderr); sys.exit(2)"
    with pytest.raises(process.ChildError, match=r"(?s)serve exited with 2 before.*no config"):
        async with process.started(
            python(script), name="serve", ready=process.GATEWAY_READY, deadline=seconds(10)
        ):
            pass


async def test_a_child_that_stays_silent_fails_at_the_deadline_and_is_killed() -> None:
    """No ready line within the deadline: an error saying so, and the child does not linger."""
    started = time.monotonic()
    script = "import time; time.sleep(60)"
    with pytest.raises(process.ChildError, match=r"did not print .* within 0\.5 s"):
        async with process.started(python(script), ready="never", deadline=0.5):
            pass
    assert time.monotonic() - started < seconds(5)


async def test_stop_terminates_and_kills_a_child_that_ignores_sigterm() -> None:
    """SIGTERM first; a child still running after the deadline gets SIGKILL."""
    polite = await process.start(python(SERVER))
    await polite.ready_on(process.GATEWAY_READY, seconds(10))
    assert await polite.stop() == -signal.SIGTERM
    stubborn = await process.start(python(SERVER, "ignore-sigterm"))
    await stubborn.ready_on(process.GATEWAY_READY, seconds(10))
    started = time.monotonic()
    assert await stubborn.stop(timeout=0.3) == -signal.SIGKILL
    assert time.monotonic() - started < seconds(5)


async def test_run_returns_the_exit_code_and_both_streams() -> None:
    """A command that ends by itself: its exit code, stdout and stderr."""
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    done = await process.run(python(script), timeout=seconds(10))
    assert done == process.Completed(3, "out\n", "err\n")


async def test_output_is_copied_to_the_log(tmp_path: Path) -> None:
    """With a log file, every line of both streams is appended to it."""
    log = tmp_path / "child.log"
    async with process.started(
        python(SERVER), ready=process.GATEWAY_READY, deadline=seconds(10), log=log
    ) as child:
        await child.expect("a log line", seconds(5), stream="stderr")
    assert "gateway listening on" in log.read_text()
    assert "a log line" in log.read_text()


def test_command_runs_this_interpreter_on_the_package() -> None:
    """``command`` is ``python -m gateway`` with this interpreter."""
    assert process.command("serve", "--config", "x.toml") == [
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--config",
        "x.toml",
    ]
