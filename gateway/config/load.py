"""Reading the configuration: a TOML file, then ``GATEWAY_<SECTION>_<KEY>`` environment overrides.

Everything is checked at start-up and turned into the frozen settings of
``gateway.config.settings``, so a typo stops the gateway with one line naming the file, the key
and what was expected, instead of surfacing as a hung poller an hour later. Secrets (router
passwords, the JWT secret) are read from the environment or from files, kept in ``Secret``, and
never written into any message, ``repr`` or log line.

Which keys a table accepts, how each is checked and which environment variables exist all come
from the settings fields (``gateway.config.schema.settings_fields``): nothing here lists keys.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import ssl
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, cast, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from gateway.config.routers import RouterSettings
from gateway.config.schema import (
    CaFile,
    Choice,
    Derived,
    EnvKind,
    Fingerprint,
    Flag,
    Integer,
    JwtSecret,
    KeyFile,
    NameFilter,
    Networks,
    Number,
    Origins,
    PageUrl,
    RouterPassword,
    SettingField,
    Text,
    Texts,
    Url,
    Words,
    settings_fields,
)
from gateway.config.secret import Secret, redact_url
from gateway.config.settings import Settings
from gateway.config.table import ConfigError, Context, Table, quote, show, toml_problem
from gateway.core.frames import EXACT, name_patterns
from gateway.core.origins import OriginError, normalise_origin
from gateway.signing_keys import (
    MAX_KEY_FILE_BYTES,
    KeyFileError,
    keys_from_jwks,
    public_key_from_pem,
)

__all__ = [
    "ENV_PREFIX",
    "SECTIONS",
    "accepted_keys",
    "env_variable",
    "load_settings",
    "settings_from_dict",
]

ENV_PREFIX: Final = "GATEWAY_"
"""Environment overrides are named ``GATEWAY_<SECTION>_<KEY>``, e.g. ``GATEWAY_POLL_INTERVAL``."""

SECTIONS: Final[Mapping[str, type]] = {
    name: get_args(hint)[0] if get_origin(hint) is tuple else hint
    for name, hint in get_type_hints(Settings).items()
}
"""Each section's name and settings class, in :class:`Settings` order."""

_ARRAYS: Final = frozenset(
    name for name, hint in get_type_hints(Settings).items() if get_origin(hint) is tuple
)
"""The sections that are arrays of tables (``[[routers]]``): ``tuple`` fields of ``Settings``."""

MIN_JWT_SECRET_BYTES: Final = 32
"""The shortest HS256 secret accepted, in bytes of its UTF-8 text (RFC 7518, section 3.2)."""

_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")


def env_variable(section: str, key: str) -> str:
    """The environment variable that overrides ``key`` of ``[section]``."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def accepted_keys(cls: type) -> tuple[str, ...]:
    """Every TOML key a table of the settings class ``cls`` may hold, in field order."""
    return tuple(key for spec in settings_fields(cls) for key in spec.keys)


def load_settings(path: str | os.PathLike[str], env: Mapping[str, str] = os.environ) -> Settings:
    """Read the TOML file at ``path``, apply ``GATEWAY_*`` overrides from ``env``, check it all.

    Relative ``password_file`` / ``jwt_secret_file`` / ``tls_ca_file`` / ``public_key_file`` /
    ``jwks_file`` paths are relative to the file's directory.
    Raises :class:`ConfigError` naming ``path`` for every problem, including an unreadable file and
    TOML syntax errors (with their line and column).
    """
    source = os.fspath(path)
    try:
        text = Path(source).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    except ValueError:
        raise ConfigError(f"{source}: cannot read the file: a NUL character in its name") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {toml_problem(str(exc))}") from None
    except ValueError:
        # tomllib reads integers with int(), which refuses more than 4300 digits.
        raise ConfigError(f"{source}: invalid TOML: an integer too long to read") from None
    return settings_from_dict(data, source=source, env=env, base_dir=Path(source).parent)


def settings_from_dict(
    data: Mapping[str, object],
    *,
    source: str,
    env: Mapping[str, str] = os.environ,
    base_dir: str | os.PathLike[str] | None = None,
) -> Settings:
    """Check ``data`` (a parsed TOML document) plus ``GATEWAY_*`` overrides from ``env``.

    ``source`` names the configuration in error messages (the file name, or e.g. ``"demo"``).
    Relative file paths (secrets, ``tls_ca_file``) are resolved against ``base_dir`` (the
    working directory when ``None``). Raises :class:`ConfigError`; ``data`` is not modified.
    """
    ctx = Context(source, env, Path(base_dir) if base_dir is not None else None)
    if not isinstance(data, Mapping):
        ctx.fail("", f"expected a table, got {show(data)}")
    merged = _apply_env(ctx, data)
    top = Table(ctx, "", merged, tuple(SECTIONS))
    sections: dict[str, object] = {}
    for name, cls in SECTIONS.items():
        if name in _ARRAYS:
            sections[name] = _routers(ctx, top.tables(name, accepted_keys(cls)))
        else:
            sections[name] = _Reader(top.table(name, accepted_keys(cls)), cls).build()
    return Settings(**sections)  # type: ignore[arg-type]  # one value per field, built above


# -- environment overrides ---------------------------------------------------------------------


def _apply_env(ctx: Context, data: Mapping[str, object]) -> dict[str, object]:
    """Return a copy of ``data`` with every ``GATEWAY_<SECTION>_<KEY>`` variable applied.

    Every key of every table section has one. Values are parsed to the key's type only as far
    as needed to be checked like file values; text that does not parse is passed on as text so
    the check reports it (naming the variable, through ``ctx.variables``). A variable under a
    section's prefix that is no key's is refused first (:func:`_refuse_unknown_variables`).
    """
    _refuse_unknown_variables(ctx, data)
    merged = dict(data)
    for section, cls in SECTIONS.items():
        if section in _ARRAYS:
            continue
        overrides: dict[str, object] = {}
        replaced: list[str] = []
        for spec in settings_fields(cls):
            for key in spec.keys:
                variable = env_variable(section, key)
                if variable in ctx.env:
                    overrides[key] = _parse_env(ctx.env[variable], spec.kind.env)
                    ctx.variables[f"{section}.{key}"] = variable
                    # The environment picks a secret's source as a whole: a deployment that
                    # points GATEWAY_AUTH_JWT_SECRET_FILE at a mounted secret replaces the
                    # file's jwt_secret_env.
                    if isinstance(spec.kind, JwtSecret):
                        replaced.extend(spec.keys)
        if not overrides:
            continue
        table = merged.get(section, {})
        if not isinstance(table, Mapping):
            # Reported by the section check, which names the file's value.
            continue
        updated = {k: v for k, v in table.items() if k not in replaced}
        updated.update(overrides)
        merged[section] = updated
    return merged


def _refuse_unknown_variables(ctx: Context, data: Mapping[str, object]) -> None:
    """Stop at a ``GATEWAY_<SECTION>_*`` variable that overrides nothing, as at an unknown key.

    A mistyped override (``GATEWAY_SERVER_PROT``) would otherwise be ignored without a word,
    while the same typo in the file is refused. Variables the configuration names as a secret's
    source (``password_env``, ``jwt_secret_env``, in the file or overridden) are the user's own
    and allowed whatever their name; names outside the sections' prefixes (``GATEWAY_CONFIG``,
    ``GATEWAY_JWT_SECRET``, ``GATEWAY_LISTEN_FILE``, ``GATEWAY_TEST_*``) are never looked at.
    """
    referenced = _secret_variables(ctx, data)
    for variable in sorted(ctx.env):
        if not variable.startswith(ENV_PREFIX) or variable in referenced:
            continue
        for section, cls in SECTIONS.items():
            prefix = env_variable(section, "")
            if not variable.startswith(prefix):
                continue
            if section in _ARRAYS:
                ctx.fail(
                    variable,
                    f"unknown environment variable; [[{section}]] tables have no environment "
                    "overrides: set their keys in the file",
                )
            keys = accepted_keys(cls)
            if variable in {env_variable(section, key) for key in keys}:
                break
            allowed = sorted(env_variable(section, key) for key in keys)
            hint = difflib.get_close_matches(variable[len(prefix) :].lower(), keys, n=1)
            suggestion = f' (did you mean "{env_variable(section, hint[0])}"?)' if hint else ""
            ctx.fail(
                variable,
                f"unknown environment variable; expected one of {', '.join(allowed)}{suggestion}",
            )


def _secret_variables(ctx: Context, data: Mapping[str, object]) -> frozenset[str]:
    """The environment variables the configuration names as secret sources (any name): the
    ``password_env``/``jwt_secret_env`` values of the file, and of their overrides."""
    names: list[object] = []
    for section, cls in SECTIONS.items():
        keys = [
            spec.kind.env_key
            for spec in settings_fields(cls)
            if isinstance(spec.kind, JwtSecret | RouterPassword)
        ]
        value = data.get(section)
        tables = cast(list[object], value) if isinstance(value, list) else [value]
        for table in tables:
            if isinstance(table, Mapping):
                names.extend(table.get(key) for key in keys)
        if section not in _ARRAYS:
            names.extend(ctx.env.get(env_variable(section, key)) for key in keys)
    return frozenset(name for name in names if isinstance(name, str))


def _parse_env(text: str, kind: EnvKind) -> object:
    if kind == "int":
        stripped = text.strip()
        if _INTEGER_TEXT.fullmatch(stripped):
            try:
                return int(stripped)
            except ValueError:
                # More than 4300 digits (int()'s limit): reported as not a valid integer.
                return text
        return text
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "bool":
        return {"true": True, "false": False}.get(text.strip().lower(), text)
    if kind == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


# -- one table into one settings class ---------------------------------------------------------


class _Reader:
    """Reads one table into one settings class: each field once, in declaration order.

    A field that depends on another (a default computed from it, a bound, a check that needs
    it) reads that one first through :meth:`value`, so it is checked before it is used.
    """

    __slots__ = ("cls", "specs", "table", "values")

    def __init__(self, table: Table, cls: type) -> None:
        self.table = table
        self.cls = cls
        self.specs = {spec.name: spec for spec in settings_fields(cls)}
        self.values: dict[str, Any] = {}

    def value(self, name: str) -> Any:
        """The checked value of the field ``name``."""
        if name not in self.values:
            self.values[name] = _read(self, self.specs[name])
        return self.values[name]

    def build(self) -> Any:
        for name in self.specs:
            self.value(name)
        return self.cls(**self.values)


def _read(reader: _Reader, spec: SettingField) -> object:
    """One field's value from the table, checked by its kind."""
    table = reader.table
    kind = spec.kind
    key = spec.keys[0] if spec.keys else spec.name
    fallback = getattr(kind, "fallback", None)
    default = fallback(reader.value) if fallback is not None else spec.default
    match kind:
        case Text():
            if spec.required:
                text: str | None = table.required_string(key)
            elif spec.optional and default is None:
                text = table.optional_string(key)
            else:
                text = table.string(key, default, allow_empty=kind.allow_empty)
            if text is not None and kind.valid is not None and not kind.valid(text):
                table.fail(key, f"expected {kind.expected}, got {show(text)}")
            return text
        case Number():
            if spec.optional and default is None:
                found = table.optional_number(key)
            else:
                found = table.number(key, default, allow_zero=kind.allow_zero)
            if found is None:
                return None
            if kind.minimum is not None and found < kind.minimum:
                expected = f"a number >= {kind.minimum:g} ({kind.why})"
                table.fail(key, f"expected {expected}, got {found:g}")
            if kind.at_least is not None and found < (least := reader.value(kind.at_least)):
                table.fail(
                    key, f"expected a number >= {kind.at_least} ({least}), got {show(found)}"
                )
            return found
        case Integer():
            return table.integer(key, default, minimum=kind.minimum, maximum=kind.maximum)
        case Flag():
            return table.boolean(key, default)
        case Choice():
            return table.choice(key, spec.choices, default)
        case Origins():
            return tuple(
                _origin(table, f"{key}[{index}]", value)
                for index, value in enumerate(table.strings(key, default))
            )
        case Networks():
            return tuple(
                _network(table, f"{key}[{index}]", value)
                for index, value in enumerate(table.strings(key, default))
            )
        case Texts():
            return table.strings(key, default)
        case NameFilter():
            return _name_filter(table, key, default)
        case Words():
            return _words(table, key, kind, default)
        case Url():
            return _url(table, key, kind, default)
        case PageUrl():
            return _page_url(table, key, default)
        case KeyFile():
            return _key_file(reader, key, kind)
        case JwtSecret():
            return _jwt_secret(reader, kind)
        case RouterPassword():
            return _router_password(reader, kind)
        case CaFile():
            return _ca_file(reader, key, kind)
        case Fingerprint():
            return _fingerprint(reader, key)
        case Derived():
            reader.value(kind.source)
            return reader.values[spec.name]
    raise TypeError(f"no reader for {type(kind).__name__} ({spec.name})")


# -- kinds with checks of their own ------------------------------------------------------------


def _origin(table: Table, key: str, value: str) -> str:
    """One ``allowed_origins`` entry in the form browsers send (see ``normalise_origin``)."""
    expected = 'expected an origin like "https://example.com"'
    try:
        origin = normalise_origin(value)
    except OriginError as exc:
        table.fail(key, f"{expected}, got {show(value)} ({exc})")
    scheme = origin.partition("://")[0]
    if scheme in ("ws", "wss"):
        # Browsers send the page's origin, never the websocket's URL: this could never match.
        page = {"ws": "http", "wss": "https"}[scheme]
        table.fail(
            key,
            f"{expected} (the address of the page, {page}://..., not of the websocket), "
            f"got {show(value)}",
        )
    return origin


def _name_filter(table: Table, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A name filter list: each entry a glob or an ``{exact = "name"}`` table (see NameFilter)."""
    if key not in table:
        return default
    value = table.data[key]
    expected = f'expected an array of name globs and {{{EXACT} = "name"}} tables'
    if not isinstance(value, list):
        table.fail(key, f"{expected}, got {show(value)}")
    for index, entry in enumerate(cast(list[object], value)):
        exact = isinstance(entry, Mapping) and entry.keys() == {EXACT}
        text = cast(Mapping[str, object], entry)[EXACT] if exact else entry
        if not isinstance(text, str) or not text:
            if exact:
                got = f"{{{EXACT} = {show(text)}}}"
            elif isinstance(entry, Mapping):
                got = f"a table with keys {', '.join(map(quote, entry))}"
            else:
                got = show(entry)
            table.fail(
                f"{key}[{index}]",
                f'expected a name glob (a non-empty string) or {{{EXACT} = "name"}}, got {got}',
            )
    try:
        return name_patterns(value)
    except ValueError as exc:
        # The protocol's limits on globs (what one may cost to compile and to match).
        table.fail(key, str(exc))


def _words(table: Table, key: str, kind: Words, default: tuple[str, ...]) -> tuple[str, ...]:
    """An array of ``kind.words``, at least one, each once (see Words)."""
    if key not in table:
        return default
    value = table.data[key]
    expected = f"expected an array of {', '.join(map(show, kind.words))} (at least one, each once)"
    if not isinstance(value, list):
        table.fail(key, f"{expected}, got {show(value)}")
    if not value:
        table.fail(key, f"{expected}, got an empty array")
    seen: set[str] = set()
    for index, word in enumerate(cast(list[object], value)):
        if not isinstance(word, str) or word not in kind.words:
            table.fail(f"{key}[{index}]", f"{expected}, got {show(word)}")
        if word in seen:
            table.fail(f"{key}[{index}]", f"{expected}, got {show(word)} twice")
        seen.add(word)
    return tuple(word for word in kind.words if word in seen)


def _url(table: Table, key: str, kind: Url, default: str) -> str:
    url = table.string(key, default, allow_empty=True)
    if not url:
        return url
    *first, last = (f"{scheme}://" for scheme in kind.schemes)
    expected = f'expected "" or a {", ".join(first)} or {last} URL'
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsed on access; a bad port raises here, not later
    except ValueError:
        # Not shown at all, nor urllib's message: a URL that does not parse cannot be
        # redacted, and a password with "[" or ":" in it is the usual cause.
        table.fail(
            key,
            f"{expected}, got one that does not parse (brackets of an IPv6 address, or the "
            "port); not shown, as it may hold a password: percent-encode the password's "
            "special characters (%5B for [, %3A for :, %40 for @)",
        )
    if parts.scheme not in kind.schemes:
        # redact_url: a URL can carry a password.
        table.fail(key, f"{expected}, got {show(redact_url(url))}")
    if parts.scheme in ("redis", "rediss") and not re.fullmatch(r"/?[0-9]*", parts.path):
        table.fail(
            key,
            f"expected a database number as the URL's path (redis://host:6379/0), got "
            f"{show(parts.path)}",
        )
    return url


def _network(table: Table, key: str, value: str) -> str:
    """One ``trusted_proxies`` entry: an IP network (or address) in canonical CIDR form."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        table.fail(
            key,
            f'expected an IP network like "10.0.0.0/8" or "2001:db8::/32", or an address, '
            f"got {show(value)}",
        )
    return str(network)


def _page_url(table: Table, key: str, default: str) -> str:
    """``""``, an http(s) URL, or an absolute path on the gateway's own site."""
    url = table.string(key, default, allow_empty=True)
    if not url:
        return url
    expected = 'expected "", an https:// (or http://) URL, or a path such as "/portal/token"'
    try:
        parts = urlsplit(url)
    except ValueError:
        table.fail(key, f"{expected}, got one that does not parse")
    if url.startswith("/") and not url.startswith("//") and not parts.scheme:
        return url
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        table.fail(key, f"{expected}, got {show(url)}")
    return url


def _key_file(reader: _Reader, key: str, kind: KeyFile) -> str | None:
    """A key file's resolved path; its text goes to ``kind.content_field`` once its keys load."""
    table = reader.table
    reader.values[kind.content_field] = None
    name = table.optional_string(key)
    if name is None:
        return None
    path = table.resolve(name)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        table.fail(key, f"cannot read {quote(str(path))}: {exc.strerror or exc}")
    except ValueError:
        table.fail(key, f"expected a file path, got {show(name)} (a NUL character)")
    try:
        text = data.decode("utf-8")
        if kind.jwks:
            keys_from_jwks(data)
        else:
            public_key_from_pem(data)
    except UnicodeDecodeError:
        table.fail(key, f"{quote(str(path))} is not text")
    except KeyFileError as exc:
        what = "a JSON Web Key Set" if kind.jwks else "a public key"
        table.fail(key, f"{quote(str(path))} is not usable as {what}: {exc}")
    reader.values[kind.content_field] = text
    return str(path)


def _jwt_secret(reader: _Reader, kind: JwtSecret) -> Secret | None:
    table = reader.table
    mode = reader.value("mode")
    sources = [key for key in kind.keys("") if key in table]
    # Both are checked for type even in "none" mode: a typo should not wait for the day jwt is on.
    variable = table.string(kind.env_key, kind.default_env, secret=True)
    file_name = table.optional_string(kind.file_key, secret=True)
    if mode == "none":
        return None
    if not sources and (reader.value("public_key_file") or reader.value("jwks_file")):
        # Public keys configured and no secret named: no HS256 at all, not the default variable.
        return None
    if len(sources) > 1:
        table.fail("", f"expected one of {kind.env_key} or {kind.file_key}, got both")
    for_what = "the JWT secret"
    if file_name is not None:
        secret = table.read_secret_file(kind.file_key, file_name, for_what=for_what)
    else:
        secret = table.read_secret_env(kind.env_key, variable, for_what=for_what)
    key = sources[0] if sources else kind.env_key
    if not secret.reveal():
        # An empty HS256 key lets anyone mint tokens.
        table.fail(key, "expected a non-empty JWT secret")
    size = len(secret.reveal().encode("utf-8"))
    if size < MIN_JWT_SECRET_BYTES:
        # A short key can be guessed offline from any one token (RFC 7518, section 3.2, asks
        # for at least the hash's 256 bits). The length says what to fix; the value never shows.
        table.fail(
            key,
            f"expected a JWT secret of at least {MIN_JWT_SECRET_BYTES} bytes (HS256, RFC 7518 "
            f"section 3.2), got {size} bytes; make one with: head -c 48 /dev/urandom | base64",
        )
    return secret


def _router_password(reader: _Reader, kind: RouterPassword) -> Secret:
    """The router's password from its one source, checked to fit the router's ``encoding``.

    The login sends the password (or hashes it, before 6.43) in that encoding, so a password it
    cannot carry could never log in. The message names neither the character nor its position:
    both are pieces of the password.
    """
    table = reader.table
    router_id = reader.value("id")
    encoding = reader.value("encoding")
    sources = [key for key in kind.keys("") if key in table]
    if len(sources) != 1:
        got = " and ".join(sources) if sources else "none"
        table.fail(
            "",
            f"expected exactly one of {kind.env_key}, {kind.file_key} or {kind.inline_key}, "
            f"got {got}",
        )
    for_what = f"the password of router {show(router_id)}"
    key = sources[0]
    if key == kind.env_key:
        variable = table.required_string(key, secret=True)
        secret = table.read_secret_env(key, variable, for_what=for_what)
    elif key == kind.file_key:
        file_name = table.required_string(key, secret=True)
        secret = table.read_secret_file(key, file_name, for_what=for_what)
    else:
        secret = Secret(table.string(key, "", allow_empty=True, secret=True))
    try:
        secret.reveal().encode(encoding)
    except UnicodeError:
        table.fail(
            key,
            f"expected a password that encoding {show(encoding)} can carry, got one with "
            f"characters outside it ({for_what}; set encoding to the router's code page)",
        )
    return secret


def _ca_file(reader: _Reader, key: str, kind: CaFile) -> str | None:
    """The CA file's resolved path; its certificates (PEM) go to ``kind.pem_field``."""
    table = reader.table
    reader.values[kind.pem_field] = None
    name = table.optional_string(key)
    if name is None:
        return None
    if not reader.value("tls"):
        table.fail(key, "needs tls = true (the certificate is checked only over api-ssl)")
    path = table.resolve(name)
    try:
        pem = path.read_text(encoding="utf-8")
    except OSError as exc:
        table.fail(key, f"cannot read {quote(str(path))}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        table.fail(key, f"{quote(str(path))} is not a PEM file (not text)")
    except ValueError:
        table.fail(key, f"expected a file path, got {show(name)} (a NUL character)")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError):
        table.fail(
            key,
            f"expected PEM certificates (-----BEGIN CERTIFICATE-----) in {quote(str(path))}, "
            "found none that load",
        )
    reader.values[kind.pem_field] = pem
    return str(path)


def _fingerprint(reader: _Reader, key: str) -> str | None:
    """The fingerprint as 64 lower-case hex digits, or None."""
    table = reader.table
    text = table.optional_string(key)
    if text is None:
        return None
    if not reader.value("tls"):
        table.fail(key, "needs tls = true (the fingerprint is checked only over api-ssl)")
    digits = text.strip().replace(":", "").lower()
    if not _SHA256_HEX.fullmatch(digits):
        sha1 = " (that is the length of a SHA-1 fingerprint)" if len(digits) == 40 else ""
        table.fail(
            key,
            "expected the certificate's SHA-256 fingerprint, 64 hex digits with or without "
            f"colons, got {show(text)}{sha1}",
        )
    return digits


# -- routers -----------------------------------------------------------------------------------


def _routers(ctx: Context, tables: list[Table]) -> tuple[RouterSettings, ...]:
    if not tables:
        ctx.fail("routers", "expected at least one [[routers]] table, got none")
    routers: list[RouterSettings] = []
    first_use: dict[str, int] = {}
    for index, table in enumerate(tables):
        router: RouterSettings = _Reader(table, RouterSettings).build()
        if router.id in first_use:
            table.fail(
                "id",
                f"expected a unique router id, got {show(router.id)} "
                f"(already used by routers[{first_use[router.id]}])",
            )
        first_use[router.id] = index
        routers.append(router)
    return tuple(routers)
