"""The TLS client context for api-ssl: what it offers and checks, by how the router is trusted;
and the boundary around the router library."""

from __future__ import annotations

import ast
import ssl
import subprocess
import sys
from pathlib import Path

import gateway
from gateway.api_ssl import client_tls_context
from gateway.config import RouterSettings, Secret
from gateway.emulator.tls import make_certificate

# What RouterOS api-ssl without a certificate offers (anonymous DH, TLS 1.2).
ROUTER_ANONYMOUS_SUITES = ("ADH-AES256-GCM-SHA384", "ADH-AES128-GCM-SHA256", "ADH-AES128-SHA256")


def router(**tls: object) -> RouterSettings:
    return RouterSettings(
        id="core",
        name="core",
        host="192.0.2.1",
        port=8729,
        username="monitor",
        password=Secret("pw"),
        tls=True,
        **tls,  # type: ignore[arg-type]
    )


def suites(context: ssl.SSLContext) -> dict[str, str]:
    """Offered suite name -> its authentication ("auth-null" for anonymous)."""
    return {c["name"]: c["auth"] for c in context.get_ciphers()}


def test_tls_alone_offers_the_anonymous_suites_of_routers_without_a_certificate() -> None:
    """tls = true alone offers anonymous DH (and certificate suites), checks nothing, TLS 1.2+."""
    context = client_tls_context(router())
    offered = suites(context)
    for name in ROUTER_ANONYMOUS_SUITES:
        assert offered.get(name) == "auth-null", name
    assert "ECDHE-RSA-AES256-GCM-SHA384" in offered
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_ca_file_verifies_chain_and_host_and_refuses_anonymous_suites() -> None:
    """With tls_ca_file: chain and host name verified, no anonymous suite offered."""
    pem = make_certificate("router").cert_pem.decode()
    context = client_tls_context(router(tls_ca_file="/etc/ca.pem", tls_ca_pem=pem))
    assert "auth-null" not in suites(context).values()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509"] == 1


def test_a_pinned_fingerprint_refuses_anonymous_suites() -> None:
    """With only tls_fingerprint: no anonymous suite offered (the pin is checked after)."""
    context = client_tls_context(router(tls_fingerprint="ab" * 32))
    assert "auth-null" not in suites(context).values()
    assert context.verify_mode == ssl.CERT_NONE


def test_api_ssl_is_set_up_without_the_router_library() -> None:
    """The TLS side of a router session loads no librouteros: only gateway.routeros uses it."""
    probe = "import sys, gateway.api_ssl; print('librouteros' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def test_only_the_router_client_imports_librouteros() -> None:
    """librouteros is imported by the router client's three modules alone (the session and its
    error translation, the login, the reply reader): nothing else sees a library type."""
    package = Path(gateway.__file__).parent
    importers = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name.split(".")[0] == "librouteros" for name in names):
                importers.add(path.relative_to(package).as_posix())
    assert importers == {"routeros.py", "routeros_login.py", "routeros_reply.py"}
