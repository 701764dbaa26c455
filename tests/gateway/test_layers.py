"""The package's shape: no import circle, and the web layer reaches routers only through a seam."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Final

from tests.support import ROOT

PACKAGE: Final = ROOT / "gateway"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: Final = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, *, runtime_only: bool = False) -> set[str]:
    """The modules ``path`` imports (anywhere in it; with ``runtime_only``, not those imported
    only for type checking)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(child) for child in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_module_of_the_package_imports_itself_in_a_circle() -> None:
    """Every module can be read (and loaded) on its own: no chain of imports leads back to it."""
    graph = {
        name: {m for m in imports(path) if m in MODULES and m != name}
        for name, path in MODULES.items()
    }
    circles: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        for dep in sorted(graph[name]):
            if dep in trail:
                circles.append([*trail[trail.index(dep) :], dep])
            elif dep not in done:
                visit(dep, [*trail, dep])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert circles == []


def test_the_app_gets_its_router_client_injected() -> None:
    """The app factory imports no router client: the caller passes the connector in."""
    found = imports(PACKAGE / "app.py", runtime_only=True)
    assert not {m for m in found if m.startswith(("gateway.routeros", "librouteros"))}


def test_the_websocket_viewers_never_touch_a_poller() -> None:
    """Viewers reach their routers' pollers only through topics (their demand), never directly."""
    endpoint = sorted(path.name for path in PACKAGE.glob("ws*.py"))
    assert len(endpoint) > 1, endpoint
    viewer_side = ("hub.py", "topic.py", "topic_subscribers.py", "sink.py", "demand.py", "wire.py")
    for module in (*endpoint, *viewer_side):
        found = imports(PACKAGE / module)
        assert not {m for m in found if m.startswith(("gateway.poller", "gateway.keys"))}, module


def test_the_core_stays_pure() -> None:
    """The core (frames, messages, name filters, rows, rates...) does no I/O: it imports no event
    loop, socket, clock, file or network library, and of the package only the core itself."""
    core = {name: path for name, path in MODULES.items() if name.startswith("gateway.core.")}
    assert {"gateway.core.frames", "gateway.core.messages", "gateway.core.filters"} <= set(core)
    io = {"asyncio", "socket", "selectors", "time", "os", "io", "pathlib", "logging", "aiohttp"}
    io |= {"librouteros", "redis", "gevent", "subprocess", "threading", "ssl"}
    for name, path in core.items():
        found = imports(path)
        assert not {m.split(".")[0] for m in found} & io, name
        ours = {m for m in found if m in MODULES}
        assert all(m.startswith("gateway.core") for m in ours), (name, ours)


def test_the_contract_checker_stays_pure() -> None:
    """The protocol checker (used by tests, Locust and client authors) does no I/O: it imports
    no event loop, socket, clock or HTTP library, and of the package only pure modules."""
    for module in ("contract.py", "contract_terms.py"):
        found = {name.split(".")[0] for name in imports(PACKAGE / module)}
        assert not found & {"asyncio", "socket", "selectors", "time", "os", "aiohttp", "gevent"}
        ours = {m for m in imports(PACKAGE / module) if m in MODULES}
        assert ours <= {"gateway.history", "gateway.contract_terms"}, (module, ours)


def test_only_the_cluster_module_talks_to_redis() -> None:
    """The Redis client is imported by the cluster modules (gateway/cluster*.py) alone, and
    loading the program (the command line, the app) does not load it: one process never
    imports the client."""
    users = sorted(
        name for name, path in MODULES.items() if any(m.startswith("redis") for m in imports(path))
    )
    assert users, "no module imports the Redis client"
    assert all(name.startswith("gateway.cluster") for name in users), users
    script = (
        "import sys, gateway.cli, gateway.app; "
        "print(sorted(m for m in sys.modules if m.startswith('redis')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_lease_reaches_redis_only_through_its_store() -> None:
    """A router's lease and its parts (the poller's gate, a holder's outbox, the statuses its
    topics show, the store's interface) load without the Redis client or the link, and the
    parts sit below the lease: a lease runs, and is tested, with any store."""
    parts = ("cluster_gate.py", "cluster_outbox.py", "cluster_statuses.py", "cluster_store.py")
    for module in ("cluster_lease.py", *parts):
        found = imports(PACKAGE / module)
        assert not {m for m in found if m.startswith(("redis", "gateway.cluster_link"))}, module
    for module in parts:
        found = imports(PACKAGE / module)
        above = ("gateway.cluster_lease", "gateway.cluster_stream", "gateway.cluster_link")
        assert not {m for m in found if m.startswith(above)}, module
