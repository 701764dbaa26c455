"""What the tests share, in one place: fixtures are built from these in the ``conftest.py`` files.

- ``timing``: one time unit for every deadline, and waiting on conditions;
- ``gateway``: a real gateway (in-process, on loopback) in front of emulated routers, and a
  websocket viewer's helpers, which hold the stream to ``gateway.contract``;
- ``emulators``: emulated routers on the test's clock and real client libraries logged in to them;
- ``web``: the browser tests' gateway process, page and checks;
- ``fakes``: typed fakes (transports, a clock) for tests of one piece;
- ``virtual_time``: an event loop on virtual time, for the fast tier;
- ``needs``: skip locally, fail in CI, when a tool is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
"""The repository's root."""
