"""One close-code table: README, dashboard, Locust and gateway all follow ``CloseCode``."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

from gateway.wire import CloseCode, Reconnect
from tests.support import ROOT
from tests.support.needs import missing

# What the README's "client" column says for each answer.
ADVICE: Final[dict[Reconnect, str]] = {
    "retry": "reconnect with backoff",
    "slow": "reconnect with a longer backoff",
    "stop": "terminal",
}

CODES: Final = frozenset(int(c) for c in CloseCode)


def readme_table() -> dict[int, tuple[str, str, str]]:
    """The README's close-code table: code -> (name, why, client)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Close codes", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `(\d+)` \| `(\w+)` \| (.+?) \| (.+?) \|$", section, re.MULTILINE)
    return {int(code): (name, why, client) for code, name, why, client in rows}


def test_the_readme_table_is_the_close_code_enum() -> None:
    """Operators read the same codes, names and client advice that the gateway uses."""
    table = readme_table()
    assert sorted(table) == sorted(CODES)
    for code in CloseCode:
        name, why, client = table[code]
        assert name == code.name, code
        assert why.startswith(code.meaning), (code, why)
        assert client.startswith(ADVICE[code.reconnect]), (code, client)


def test_the_dashboard_follows_the_close_code_enum() -> None:
    """The page names the same codes and retries, backs off or stops exactly as the table says."""
    node = shutil.which("node")
    if node is None:
        missing("node is not installed (apt-get install nodejs)")
    module = json.dumps(str(ROOT / "web/static/js/socket.js"))
    script = (
        f"import {{ CLOSE, closeDecision }} from {module};"
        "const codes = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify({ close: CLOSE,"
        " actions: Object.fromEntries(codes.map((c) => [c, closeDecision(c).action])) }));"
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script, json.dumps(sorted(CODES))],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    seen = json.loads(result.stdout)
    assert seen["close"] == {code.name: int(code) for code in CloseCode}
    assert seen["actions"] == {str(int(code)): code.reconnect for code in CloseCode}


def close_code_literals(path: Path) -> list[int]:
    """Integer literals in ``path``'s code (not its strings) that are close codes."""
    tree = ast.parse(path.read_text())
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in CODES
    ]


def test_locust_takes_its_close_codes_from_the_enum() -> None:
    """The load test judges closes by the gateway's own table, not by numbers of its own."""
    path = ROOT / "loadtest/locustfile.py"
    assert "from gateway.wire import CloseCode" in path.read_text()
    assert "CloseCode.GOING_AWAY" in path.read_text()
    # The modules beside it (its websocket client, its checks) included.
    offenders = {
        str(module.relative_to(ROOT)): found
        for module in sorted((ROOT / "loadtest").glob("*.py"))
        if (found := close_code_literals(module))
    }
    assert offenders == {}


def test_the_gateway_writes_close_codes_only_through_the_enum() -> None:
    """No module but ``gateway.wire`` spells a close code as a bare number."""
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "gateway").rglob("*.py"))
        if path.name != "wire.py" and (found := close_code_literals(path))
    }
    assert offenders == {}
