"""Every settings field is a working key: read from TOML, from its variable, and in the README."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pytest

from gateway.config import ConfigError, Secret, settings_from_dict
from gateway.config.load import SECTIONS, accepted_keys, env_variable
from gateway.config.schema import (
    REQUIRED,
    Choice,
    Flag,
    Integer,
    Number,
    SettingField,
    Text,
    Texts,
    settings_fields,
)
from gateway.emulator.tls import make_certificate
from tests.support import ROOT
from tests.support.tokens import ec_key, jwk, jwks, public_pem, rsa_key

README = ROOT / "README.md"
ROUTER: dict[str, object] = {"id": "core-1", "host": "192.0.2.1", "username": "u", "password": "p"}
FINGERPRINT = "ab" * 32
CERTIFICATE = make_certificate("router").cert_pem
SIGNER_PEM = public_pem(ec_key()).decode()
JWKS = jwks(jwk(rsa_key(), "k1"))


@dataclass(frozen=True)
class Probe:
    """A value for one key, what the field then holds (``also``: other fields it sets), and what
    the table needs besides. An ``expected`` path is relative to the configuration's directory."""

    value: object
    expected: object
    table: dict[str, object] = field(default_factory=dict)
    also: dict[str, object] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


# Keys whose kind has a check of its own: a value it accepts, and what it becomes. A plain key
# (text, number, integer, flag, choice, list) needs no entry: generic_probe() makes one.
PROBE_JWT = "probe-jwt-secret-of-32-bytes-or-more"

SPECIAL: dict[tuple[str, str], Probe] = {
    ("auth", "mode"): Probe("jwt", "jwt", env={"GATEWAY_JWT_SECRET": PROBE_JWT}),
    ("server", "allowed_origins"): Probe(["HTTPS://Noc.Example:443/"], ("https://noc.example",)),
    ("auth", "jwt_secret_env"): Probe(
        "PROBE_JWT", Secret(PROBE_JWT), {"mode": "jwt"}, env={"PROBE_JWT": PROBE_JWT}
    ),
    ("auth", "jwt_secret_file"): Probe("jwt.secret", Secret(PROBE_JWT), {"mode": "jwt"}),
    ("auth", "public_key_file"): Probe(
        "signer.pem", Path("signer.pem"), {"mode": "jwt"}, also={"public_key_pem": SIGNER_PEM}
    ),
    ("auth", "jwks_file"): Probe(
        "jwks.json", Path("jwks.json"), {"mode": "jwt"}, also={"jwks_json": JWKS}
    ),
    ("auth", "token_url"): Probe("https://portal.example/token", "https://portal.example/token"),
    ("server", "trusted_proxies"): Probe(["10.1.2.3/8", "::1"], ("10.0.0.0/8", "::1/128")),
    ("server", "allowed_frame_ancestors"): Probe(
        ["HTTPS://Portal.Example:443"], ("https://portal.example",)
    ),
    ("cluster", "redis_url"): Probe("redis://redis:6379/1", "redis://redis:6379/1"),
    ("cluster", "key_prefix"): Probe("noc:gw-2", "noc:gw-2"),
    ("routers", "id"): Probe("edge_2.example", "edge_2.example"),
    ("routers", "encoding"): Probe("cp1251", "cp1251"),
    ("routers", "interfaces"): Probe(
        ["<pppoe-*>", {"exact": "ether1 [WAN]"}], ("<pppoe-*>", "ether1 [[]WAN]")
    ),
    ("routers", "sources"): Probe(["queues", "interfaces"], ("interfaces", "queues")),
    ("routers", "queues"): Probe(["cust*", {"exact": "q [1]"}], ("cust*", "q [[]1]")),
    ("routers", "hotspot"): Probe([{"exact": "guest"}], ("guest",)),
    ("routers", "password_env"): Probe(
        "PROBE_PW", Secret("probe-pw"), drop=("password",), env={"PROBE_PW": "probe-pw"}
    ),
    ("routers", "password_file"): Probe("router.secret", Secret("probe-pw"), drop=("password",)),
    ("routers", "password"): Probe("probe-pw", Secret("probe-pw")),
    ("routers", "tls_ca_file"): Probe(
        "ca.pem", Path("ca.pem"), {"tls": True}, also={"tls_ca_pem": CERTIFICATE.decode()}
    ),
    ("routers", "tls_fingerprint"): Probe(FINGERPRINT.upper(), FINGERPRINT, {"tls": True}),
}


def generic_probe(spec: SettingField) -> Probe:
    """A value different from the default that a plain kind accepts as it is."""
    kind, default = spec.kind, spec.default
    if isinstance(kind, Text) and kind.valid is None:
        return Probe("probe-text", "probe-text")
    if isinstance(kind, Number):
        value = 2.5 if default in (None, REQUIRED) else default * 2 + 0.5
        return Probe(value, value)
    if isinstance(kind, Integer):
        base = kind.minimum if default is REQUIRED else default
        value = base + 1 if kind.maximum is None or base < kind.maximum else kind.minimum
        return Probe(value, value)
    if isinstance(kind, Flag):
        return Probe(not default, not default)
    if isinstance(kind, Choice):
        other = next(c for c in spec.choices if c != default)
        return Probe(other, other)
    if isinstance(kind, Texts):
        return Probe(["probe*"], ("probe*",))
    raise AssertionError(f"{spec.name}: add a probe for {type(kind).__name__} to SPECIAL")


def probe(section: str, spec: SettingField, key: str) -> Probe:
    return SPECIAL.get((section, key)) or generic_probe(spec)


def every_key(*, sections_only: bool = False) -> list[Any]:
    """One test case per key of every settings class (of the table sections only, if asked)."""
    return [
        pytest.param(section, spec, key, id=f"{section}.{key}")
        for section, cls in SECTIONS.items()
        if not (sections_only and section == "routers")
        for spec in settings_fields(cls)
        for key in spec.keys
    ]


def document(section: str, table: dict[str, object], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A configuration of one router, with ``table`` as ``[section]`` (or in the router)."""
    router = dict(ROUTER)
    if section != "routers":
        return {section: table, "routers": [router]}
    router.update(table)
    for key in drop:
        del router[key]
    return {"routers": [router]}


def check(settings: object, section: str, spec: SettingField, case: Probe, files: Path) -> None:
    """The field (and any other it sets) holds what the probe expects."""
    holder = getattr(settings, section)
    holder = holder[0] if section == "routers" else holder
    expected = files / case.expected if isinstance(case.expected, Path) else case.expected
    value = getattr(holder, spec.name)
    assert (Path(value) if isinstance(expected, Path) else value) == expected
    for name, also in case.also.items():
        assert getattr(holder, name) == also


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "jwt.secret").write_text(PROBE_JWT + "\n", encoding="utf-8")
    (tmp_path / "router.secret").write_text("probe-pw\n", encoding="utf-8")
    (tmp_path / "ca.pem").write_bytes(CERTIFICATE)
    (tmp_path / "signer.pem").write_text(SIGNER_PEM)
    (tmp_path / "jwks.json").write_text(JWKS)
    return tmp_path


@pytest.mark.parametrize(("section", "spec", "key"), every_key())
def test_every_key_is_read_from_the_file(
    files: Path, section: str, spec: SettingField, key: str
) -> None:
    """Each key a settings field declares is accepted in the file and lands in that field."""
    case = probe(section, spec, key)
    data = document(section, {**case.table, key: case.value}, case.drop)
    settings = settings_from_dict(data, source="probe", env=case.env, base_dir=files)
    check(settings, section, spec, case, files)


@pytest.mark.parametrize(("section", "spec", "key"), every_key(sections_only=True))
def test_every_section_key_is_read_from_its_environment_variable(
    files: Path, section: str, spec: SettingField, key: str
) -> None:
    """GATEWAY_<SECTION>_<KEY> sets each key of [server], [auth], [poll] and [cluster]."""
    case = probe(section, spec, key)
    value = case.value
    text = ",".join(value) if isinstance(value, list) else str(value).lower()
    if isinstance(value, str):
        text = value
    variable = env_variable(section, key)
    assert variable == f"GATEWAY_{section.upper()}_{key.upper()}"
    env = {**case.env, variable: text}
    data = document(section, dict(case.table))
    settings = settings_from_dict(data, source="probe", env=env, base_dir=files)
    check(settings, section, spec, case, files)


def readme_config() -> str:
    """The TOML block of README's "Configuration" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Configuration", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block is not None
    return block.group(1)


def readme_tables() -> dict[str, str]:
    """The README block's text (comments included) under each table header."""
    tables: dict[str, str] = {}
    current = ""
    for line in readme_config().splitlines():
        header = re.fullmatch(r"\[\[?(\w+)\]\]?", line.strip())
        if header:
            current = header.group(1)
        else:
            tables[current] = tables.get(current, "") + line + "\n"
    return tables


@pytest.mark.parametrize(("section", "spec", "key"), every_key())
def test_readme_configuration_names_every_key(section: str, spec: SettingField, key: str) -> None:
    """README's configuration block shows every key in its section, so none is undocumented."""
    shown = readme_tables().get(section, "")
    assert re.search(rf"(?<![\w.]){re.escape(key)}\s*=", shown), f"[{section}] {key}"


def test_readme_configuration_shows_the_defaults() -> None:
    """The values README shows for [server], [auth], [poll] and [cluster] are the defaults."""
    data = tomllib.loads(readme_config())
    settings = settings_from_dict(data, source="README.md", env={"CORE1_PASSWORD": "x"})
    for section, cls in SECTIONS.items():
        if section != "routers":
            assert getattr(settings, section) == cls(), section


def test_table_accepts_exactly_the_declared_keys() -> None:
    """A table accepts the keys its fields declare and reports any other by name."""
    keys = accepted_keys(SECTIONS["server"])
    assert "heartbeat" in keys
    with pytest.raises(ConfigError, match=r"server\.heartbeet: unknown key; .*\(did you mean"):
        settings_from_dict(document("server", {"heartbeet": 5}), source="probe", env={})


def test_a_field_without_a_kind_is_refused() -> None:
    """A settings field declared without its kind fails loudly instead of being skipped."""

    @dataclass(frozen=True)
    class Broken:
        fine: Annotated[int, Integer("a count")] = 1
        bare: int = 2

    with pytest.raises(TypeError, match=r"Broken\.bare: declare it as Annotated"):
        settings_fields(Broken)
