"""A test that needs a tool the machine lacks: skipped locally, failed in CI.

A suite that silently skips its browser, container or Redis tests proves nothing, so with
``CI=true`` a missing tool is a failure that names what to install.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(what: str) -> NoReturn:
    """Skip the test (locally) or fail it (``CI=true``) because ``what`` is missing."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"this test must run in CI, but {what}")
    pytest.skip(what)
