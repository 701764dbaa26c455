"""Any configuration either loads or stops start-up with one ConfigError line: never a traceback.

Hypothesis writes documents of every TOML value type (and values chosen to be awkward: huge
numbers, NaN, NUL characters, unparsable URLs, unusual encodings) under every key the settings
accept, plus environment overrides, and the loader must answer each with settings or a
one-line ``ConfigError`` that holds none of the secrets it was given.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import ConfigError, settings_from_dict
from gateway.config.load import SECTIONS, accepted_keys, env_variable
from gateway.emulator.tls import make_certificate
from tests.support.tokens import ec_key, jwk, jwks, private_pem, public_pem, rsa_key

SECRET: Final = "fuzz-secret-Zq81"
"""The value of every secret source the documents can name (variable PW, file pw.txt)."""

AWKWARD_TEXT: Final = (
    "",
    " ",
    "x",
    "PW",
    "pw.txt",
    "ca.pem",
    "/",
    "..",
    "a\x00b",
    "\ud800",
    "Hunter2-Secret!",
    "utf-8",
    "utf-16",
    "utf-8-sig",
    "unicode_escape",
    "base64",
    "cp932",
    "jwt",
    "none",
    "token",
    "plain",
    "redis://u:Redis[Pass99@h/",
    "redis://h:99999/",
    "redis://h:x/",
    "http://[::1",
    "https://noc.example.net:443",
    "null",
    "3F:A0",
    "f" * 64,
    "<pppoe-*>",
    "*a*b*c*d*e*f",
    "1e999",
    "nan",
    "-1",
    "signer.pem",
    "jwks.json",
    "private.pem",
    "10.0.0.0/8",
    "10.0.0.0/33",
    "::1",
    "2001:db8::/64",
    "/portal/token",
    "//evil.example/token",
    "javascript:alert(1)",
    "https://portal.example.net/token",
    "json",
    "text",
)

# Built rather than listed, so that Hypothesis' description of the strategies stays short.
huge_integers = st.builds(
    lambda digits, sign: sign * 10**digits, st.integers(300, 4250), st.sampled_from([1, -1])
)
long_digits = st.builds(lambda digits: "9" * digits, st.integers(4000, 5000))

scalars = st.one_of(
    st.booleans(),
    st.integers(),
    huge_integers,
    st.sampled_from([0, -1, 1, 65535, 65536, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e308, 5e-324, 0.0]),
    st.text(max_size=20),
    st.sampled_from(AWKWARD_TEXT),
    long_digits,
    st.datetimes(timezones=st.none() | st.just(datetime.UTC)),
    st.dates(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["exact", "x", "name"]) | st.text(max_size=5), inner, max_size=3
        )
    ),
    max_leaves=8,
)


def table_for(
    cls: type, good: Mapping[str, object] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """A table of ``cls``'s keys holding anything (the ``good`` ones mostly their good value,
    so later checks are reached too), plus now and then an unknown key."""
    good = good or {}
    required = {key: st.just(value) | st.just(value) | values for key, value in good.items()}
    optional = {key: values for key in accepted_keys(cls) if key not in good}
    return st.fixed_dictionaries(required, optional=optional | {"unknown_key": values})


GOOD_ROUTER: Final = {"id": "r1", "host": "192.0.2.1", "username": "monitor", "password_env": "PW"}

documents = st.fixed_dictionaries(
    {},
    optional={
        "server": table_for(SECTIONS["server"]) | values,
        "auth": table_for(SECTIONS["auth"]),
        "poll": table_for(SECTIONS["poll"]),
        "cluster": table_for(SECTIONS["cluster"]),
        "limits": table_for(SECTIONS["limits"]) | values,
        "routers": st.lists(table_for(SECTIONS["routers"], GOOD_ROUTER) | values, max_size=3)
        | values,
        "stray": values,
    },
)

ENV_VARIABLES: Final = [
    env_variable(section, key)
    for section, cls in SECTIONS.items()
    if section != "routers"
    for key in accepted_keys(cls)
]
environments = st.dictionaries(
    st.sampled_from(ENV_VARIABLES),
    st.text(max_size=12)
    | long_digits
    | st.sampled_from(AWKWARD_TEXT).filter(lambda t: "\x00" not in t),
    max_size=4,
)


def names_a_key(message: str, document: dict[str, Any]) -> bool:
    """Whether a message names where the mistake is: ``fuzz.toml: <key path>: <problem>``, the
    path starting at a section, a key of the document, or the variable that set the value."""
    where, _, problem = message.removeprefix("fuzz.toml: ").partition(": ")
    head = re.split(r"[.\[ ]", where, maxsplit=1)[0]
    return bool(problem) and (head in SECTIONS or head in document or head.startswith("GATEWAY_"))


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the files documents may name: a secret, a CA certificate, token keys
    (a public key, a key set, and a private key that must be refused)."""
    path = tmp_path_factory.mktemp("fuzz")
    (path / "pw.txt").write_text(SECRET + "\n", encoding="utf-8")
    (path / "ca.pem").write_bytes(make_certificate("router").cert_pem)
    (path / "signer.pem").write_bytes(public_pem(ec_key()))
    (path / "jwks.json").write_text(jwks(jwk(rsa_key(), "k1")))
    (path / "private.pem").write_bytes(private_pem(rsa_key()))
    return path


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=documents, env=environments)
def test_any_document_loads_or_is_one_config_error(
    base_dir: Path, document: dict[str, Any], env: dict[str, str]
) -> None:
    """Whatever the file holds, the loader answers with settings or one ConfigError line that
    shows no secret, never with another exception."""
    try:
        settings_from_dict(
            document, source="fuzz.toml", env={**env, "PW": SECRET}, base_dir=base_dir
        )
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.toml: ")
        assert names_a_key(message, document), message
        assert "\n" not in message
        assert SECRET not in message
        assert "PRIVATE KEY" not in message
