"""The gateway's configuration: a TOML file, then ``GATEWAY_<SECTION>_<KEY>`` environment overrides.

Everything is checked at start-up and turned into frozen settings, so a typo stops the gateway
with one line naming the file, the key and what was expected, instead of surfacing as a hung
poller an hour later. Secrets (router passwords, the JWT secret) are read from the environment or
from files, kept in :class:`Secret`, and never written into any message, ``repr`` or log line.
"""

from __future__ import annotations

import codecs
import difflib
import hmac
import json
import math
import os
import re
import ssl
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, NoReturn, TypeVar, cast, get_args
from urllib.parse import urlsplit

from gateway.core.frames import InterfaceFilter
from gateway.core.origins import OriginError, normalise_origin

__all__ = [
    "DEFAULT_JWT_SECRET_ENV",
    "ENV_PREFIX",
    "AuthMode",
    "AuthSettings",
    "ClusterSettings",
    "ConfigError",
    "LoginMethod",
    "PollSettings",
    "RouterSettings",
    "Secret",
    "ServerSettings",
    "Settings",
    "load_settings",
    "settings_from_dict",
]

AuthMode = Literal["none", "jwt"]
"""``none``: anyone who can reach the gateway sees every router. ``jwt``: HS256 tokens."""

LoginMethod = Literal["plain", "token"]
"""``plain``: RouterOS 6.43 and later. ``token``: the older challenge login (MD5 of a token)."""

ENV_PREFIX: Final = "GATEWAY_"
"""Environment overrides are named ``GATEWAY_<SECTION>_<KEY>``, e.g. ``GATEWAY_POLL_INTERVAL``."""

DEFAULT_JWT_SECRET_ENV: Final = "GATEWAY_JWT_SECRET"
"""Where the JWT secret is read from in ``jwt`` mode when ``[auth]`` names no source."""

_ROUTER_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")

_API_PORT: Final = 8728
_API_SSL_PORT: Final = 8729


class ConfigError(Exception):
    """The configuration cannot be used. The message is one line: ``<file>: <key>: <problem>``.

    It never contains a secret's value.
    """


class Secret:
    """A secret string that does not print itself.

    ``repr()``, ``str()`` and f-strings give ``Secret('***')``; only :meth:`reveal` gives the
    value, so a secret reaches a log line, an error message or a frame only by someone writing
    ``reveal()`` on purpose. Secrets compare by value (in constant time) so settings stay
    comparable.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        """Wrap ``value``."""
        self._value = value

    def reveal(self) -> str:
        """The secret's value, for the one place that needs it (a login, a signature check)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """``[server]``: where the gateway listens and whom it serves.

    ``allowed_origins`` are normalised as browsers send ``Origin`` (lower case, no default
    port; see ``gateway.core.origins``); empty means only same-origin browsers may open a
    websocket. ``port`` 0 asks the OS for a free port (tests).
    """

    host: str = "0.0.0.0"
    port: int = 8080
    allowed_origins: tuple[str, ...] = ()
    max_connections: int = 20000
    shutdown_grace: float = 10.0


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``[auth]``: ``jwt_secret`` is the resolved HS256 secret, present exactly in ``jwt`` mode."""

    mode: AuthMode = "none"
    jwt_secret: Secret | None = None


@dataclass(frozen=True, slots=True)
class PollSettings:
    """``[poll]``: defaults for every router, in seconds (``history`` counts frames).

    ``backoff_max >= backoff_initial`` is checked at load.
    """

    interval: float = 1.0
    timeout: float = 3.0
    linger: float = 10.0
    history: int = 300
    backoff_initial: float = 0.5
    backoff_max: float = 30.0


@dataclass(frozen=True, slots=True, repr=False)
class ClusterSettings:
    """``[cluster]``: ``redis_url`` empty means one process with an in-memory hub.

    The URL may carry a Redis password, so ``repr()`` masks it.
    """

    redis_url: str = ""

    @property
    def enabled(self) -> bool:
        """Whether replicas coordinate through Redis."""
        return bool(self.redis_url)

    def __repr__(self) -> str:
        return f"ClusterSettings(redis_url={_redact_url(self.redis_url)!r})"


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """One ``[[routers]]`` entry.

    ``interval`` and ``timeout`` are ``None`` when the router inherits them from ``[poll]``; the
    poller asks :meth:`effective_interval` / :meth:`effective_timeout`, so an environment override
    of ``[poll]`` still reaches every router that did not set its own. ``interfaces`` are name
    globs, empty for every interface.

    TLS (``tls = true``, api-ssl): with neither ``tls_ca_file`` nor ``tls_fingerprint`` the
    router is not authenticated and anonymous Diffie-Hellman is accepted (api-ssl without a
    certificate). ``tls_ca_file`` is the file's resolved path and ``tls_ca_pem`` its
    certificates, read at load; the router's certificate must chain to one of them and name
    ``host``. ``tls_fingerprint`` is the SHA-256 of the router's own certificate (64 lower-case
    hex digits, no colons). With either, anonymous TLS is refused. Both need ``tls``.
    """

    id: str
    name: str
    host: str
    port: int
    username: str
    password: Secret
    tls: bool = False
    encoding: str = "utf-8"
    interval: float | None = None
    timeout: float | None = None
    interfaces: tuple[str, ...] = ()
    login_method: LoginMethod = "plain"
    tls_ca_file: str | None = None
    tls_ca_pem: str | None = field(default=None, repr=False)
    tls_fingerprint: str | None = None

    @property
    def authenticates_router(self) -> bool:
        """Whether the router must prove who it is (a CA file or a pinned fingerprint)."""
        return self.tls_ca_pem is not None or self.tls_fingerprint is not None

    def effective_interval(self, poll: PollSettings) -> float:
        """Seconds between polls of this router: its own ``interval``, else ``poll.interval``."""
        return poll.interval if self.interval is None else self.interval

    def effective_timeout(self, poll: PollSettings) -> float:
        """Deadline for connect, login and each command: ``timeout``, else ``poll.timeout``."""
        return poll.timeout if self.timeout is None else self.timeout

    def interface_filter(self) -> InterfaceFilter:
        """The interfaces this router publishes (every one when ``interfaces`` is empty)."""
        return InterfaceFilter.of(self.interfaces) if self.interfaces else InterfaceFilter.all()


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole configuration. ``routers`` is never empty and router ids are unique."""

    server: ServerSettings
    auth: AuthSettings
    poll: PollSettings
    cluster: ClusterSettings
    routers: tuple[RouterSettings, ...]


def load_settings(path: str | os.PathLike[str], env: Mapping[str, str] = os.environ) -> Settings:
    """Read the TOML file at ``path``, apply ``GATEWAY_*`` overrides from ``env``, check it all.

    Relative ``password_file`` / ``jwt_secret_file`` / ``tls_ca_file`` paths are relative to the
    file's directory.
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
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {_toml_problem(str(exc))}") from None
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
    ctx = _Context(source, env, Path(base_dir) if base_dir is not None else None)
    if not isinstance(data, Mapping):
        ctx.fail("", f"expected a table, got {_show(data)}")
    merged = _apply_env(ctx, data)
    top = _Table(ctx, "", merged, _TOP_KEYS)
    return Settings(
        server=_server(top.table("server")),
        auth=_auth(top.table("auth")),
        poll=_poll(top.table("poll")),
        cluster=_cluster(top.table("cluster")),
        routers=_routers(ctx, top),
    )


# -- environment overrides ---------------------------------------------------------------------

_Kind = Literal["str", "int", "float", "list"]

# The scalar keys of each section, with the type an environment value is parsed to. This is also
# the list of keys each section accepts, so the two cannot drift apart.
_SECTION_KEYS: Final[Mapping[str, Mapping[str, _Kind]]] = {
    "server": {
        "host": "str",
        "port": "int",
        "allowed_origins": "list",
        "max_connections": "int",
        "shutdown_grace": "float",
    },
    "auth": {"mode": "str", "jwt_secret_env": "str", "jwt_secret_file": "str"},
    "poll": {
        "interval": "float",
        "timeout": "float",
        "linger": "float",
        "history": "int",
        "backoff_initial": "float",
        "backoff_max": "float",
    },
    "cluster": {"redis_url": "str"},
}

_TOP_KEYS: Final = (*_SECTION_KEYS, "routers")

_SECRET_SOURCES: Final = ("jwt_secret_env", "jwt_secret_file")


def _apply_env(ctx: _Context, data: Mapping[str, object]) -> dict[str, object]:
    """Return a copy of ``data`` with every ``GATEWAY_<SECTION>_<KEY>`` variable applied.

    Values are parsed to the key's type only as far as needed to be checked like file values;
    text that does not parse is passed on as text so the check reports it (naming the variable,
    through ``ctx.variables``).
    """
    merged = dict(data)
    for section, keys in _SECTION_KEYS.items():
        overrides: dict[str, object] = {}
        for key, kind in keys.items():
            variable = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
            if variable in ctx.env:
                overrides[key] = _parse_env(ctx.env[variable], kind)
                ctx.variables[f"{section}.{key}"] = variable
        if not overrides:
            continue
        table = merged.get(section, {})
        if not isinstance(table, Mapping):
            # Reported by the section check, which names the file's value.
            continue
        updated = dict(table)
        # The environment picks the secret source as a whole: a deployment that points
        # GATEWAY_AUTH_JWT_SECRET_FILE at a mounted secret replaces the file's jwt_secret_env.
        if section == "auth" and any(key in overrides for key in _SECRET_SOURCES):
            for key in _SECRET_SOURCES:
                updated.pop(key, None)
        updated.update(overrides)
        merged[section] = updated
    return merged


def _parse_env(text: str, kind: _Kind) -> object:
    if kind == "int":
        stripped = text.strip()
        return int(stripped) if _INTEGER_TEXT.fullmatch(stripped) else text
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


# -- sections ----------------------------------------------------------------------------------


def _server(table: _Table) -> ServerSettings:
    defaults = ServerSettings()
    return ServerSettings(
        host=table.string("host", defaults.host),
        port=table.integer("port", defaults.port, minimum=0, maximum=65535),
        allowed_origins=tuple(
            _origin(table, index, value)
            for index, value in enumerate(table.strings("allowed_origins", ()))
        ),
        max_connections=table.integer("max_connections", defaults.max_connections, minimum=1),
        shutdown_grace=table.number("shutdown_grace", defaults.shutdown_grace),
    )


def _origin(table: _Table, index: int, value: str) -> str:
    """One ``allowed_origins`` entry in the form browsers send (see ``normalise_origin``)."""
    key = f"allowed_origins[{index}]"
    expected = 'expected an origin like "https://example.com"'
    try:
        origin = normalise_origin(value)
    except OriginError as exc:
        table.fail(key, f"{expected}, got {_show(value)} ({exc})")
    scheme = origin.partition("://")[0]
    if scheme in ("ws", "wss"):
        # Browsers send the page's origin, never the websocket's URL: this could never match.
        page = {"ws": "http", "wss": "https"}[scheme]
        table.fail(
            key,
            f"{expected} (the address of the page, {page}://..., not of the websocket), "
            f"got {_show(value)}",
        )
    return origin


def _auth(table: _Table) -> AuthSettings:
    mode = table.choice("mode", get_args(AuthMode), "none")
    sources = [key for key in _SECRET_SOURCES if key in table]
    # Both are checked for type even in "none" mode: a typo should not wait for the day jwt is on.
    variable = table.string("jwt_secret_env", DEFAULT_JWT_SECRET_ENV)
    file_name = table.optional_string("jwt_secret_file")
    if mode == "none":
        return AuthSettings(mode="none")
    if len(sources) > 1:
        table.fail("", "expected one of jwt_secret_env or jwt_secret_file, got both")
    if file_name is not None:
        secret = table.read_secret_file("jwt_secret_file", file_name, for_what="the JWT secret")
    else:
        secret = table.read_secret_env("jwt_secret_env", variable, for_what="the JWT secret")
    if not secret.reveal():
        # An empty HS256 key lets anyone mint tokens.
        table.fail(sources[0] if sources else "jwt_secret_env", "expected a non-empty JWT secret")
    return AuthSettings(mode="jwt", jwt_secret=secret)


def _poll(table: _Table) -> PollSettings:
    defaults = PollSettings()
    settings = PollSettings(
        interval=table.number("interval", defaults.interval),
        timeout=table.number("timeout", defaults.timeout),
        linger=table.number("linger", defaults.linger, allow_zero=True),
        history=table.integer("history", defaults.history, minimum=1),
        backoff_initial=table.number("backoff_initial", defaults.backoff_initial),
        backoff_max=table.number("backoff_max", defaults.backoff_max),
    )
    if settings.backoff_max < settings.backoff_initial:
        table.fail(
            "backoff_max",
            f"expected a number >= backoff_initial ({settings.backoff_initial}), "
            f"got {_show(settings.backoff_max)}",
        )
    return settings


def _cluster(table: _Table) -> ClusterSettings:
    url = table.string("redis_url", "", allow_empty=True)
    if url and urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        # _redact_url: a Redis URL can carry a password.
        table.fail(
            "redis_url",
            f'expected "" or a redis://, rediss:// or unix:// URL, got {_show(_redact_url(url))}',
        )
    return ClusterSettings(redis_url=url)


_ROUTER_KEYS: Final = (
    "id",
    "name",
    "host",
    "port",
    "username",
    "password",
    "password_env",
    "password_file",
    "tls",
    "encoding",
    "interval",
    "timeout",
    "interfaces",
    "login_method",
    "tls_ca_file",
    "tls_fingerprint",
)

_PASSWORD_SOURCES: Final = ("password_env", "password_file", "password")


def _routers(ctx: _Context, top: _Table) -> tuple[RouterSettings, ...]:
    tables = top.tables("routers")
    if not tables:
        ctx.fail("routers", "expected at least one [[routers]] table, got none")
    routers: list[RouterSettings] = []
    first_use: dict[str, int] = {}
    for index, table in enumerate(tables):
        router = _router(table)
        if router.id in first_use:
            table.fail(
                "id",
                f"expected a unique router id, got {_show(router.id)} "
                f"(already used by routers[{first_use[router.id]}])",
            )
        first_use[router.id] = index
        routers.append(router)
    return tuple(routers)


def _router(table: _Table) -> RouterSettings:
    router_id = table.required_string("id")
    if not _ROUTER_ID.fullmatch(router_id):
        table.fail(
            "id",
            "expected 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit, "
            f"got {_show(router_id)}",
        )
    tls = table.boolean("tls", False)
    encoding = table.string("encoding", "utf-8")
    try:
        # encode() rather than codecs.lookup() alone: it also refuses bytes-to-bytes codecs
        # such as "base64", which lookup() knows but which cannot encode words.
        "".encode(codecs.lookup(encoding).name)
    except LookupError:
        table.fail("encoding", f"expected a known text encoding, got {_show(encoding)}")
    interfaces = table.strings("interfaces", ())
    password = _router_password(table, router_id, encoding)
    ca_file, ca_pem = _router_ca(table, tls)
    fingerprint = _router_fingerprint(table, tls)
    return RouterSettings(
        id=router_id,
        name=table.string("name", router_id),
        host=table.required_string("host"),
        port=table.integer("port", _API_SSL_PORT if tls else _API_PORT, minimum=1, maximum=65535),
        username=table.required_string("username"),
        password=password,
        tls=tls,
        encoding=encoding,
        interval=table.optional_number("interval"),
        timeout=table.optional_number("timeout"),
        interfaces=interfaces,
        login_method=table.choice("login_method", get_args(LoginMethod), "plain"),
        tls_ca_file=ca_file,
        tls_ca_pem=ca_pem,
        tls_fingerprint=fingerprint,
    )


def _router_ca(table: _Table, tls: bool) -> tuple[str | None, str | None]:
    """``tls_ca_file``: its resolved path and its certificates (PEM), or ``(None, None)``."""
    name = table.optional_string("tls_ca_file")
    if name is None:
        return None, None
    if not tls:
        table.fail("tls_ca_file", "needs tls = true (the certificate is checked only over api-ssl)")
    path = table.resolve(name)
    try:
        pem = path.read_text(encoding="utf-8")
    except OSError as exc:
        table.fail("tls_ca_file", f"cannot read {_quote(str(path))}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        table.fail("tls_ca_file", f"{_quote(str(path))} is not a PEM file (not text)")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError):
        table.fail(
            "tls_ca_file",
            f"expected PEM certificates (-----BEGIN CERTIFICATE-----) in {_quote(str(path))}, "
            "found none that load",
        )
    return str(path), pem


def _router_fingerprint(table: _Table, tls: bool) -> str | None:
    """``tls_fingerprint`` as 64 lower-case hex digits, or None."""
    text = table.optional_string("tls_fingerprint")
    if text is None:
        return None
    if not tls:
        table.fail(
            "tls_fingerprint", "needs tls = true (the fingerprint is checked only over api-ssl)"
        )
    digits = text.strip().replace(":", "").lower()
    if not _SHA256_HEX.fullmatch(digits):
        sha1 = " (that is the length of a SHA-1 fingerprint)" if len(digits) == 40 else ""
        table.fail(
            "tls_fingerprint",
            "expected the certificate's SHA-256 fingerprint, 64 hex digits with or without "
            f"colons, got {_show(text)}{sha1}",
        )
    return digits


def _router_password(table: _Table, router_id: str, encoding: str) -> Secret:
    """The router's password from its one source, checked to fit the router's ``encoding``.

    The login sends the password (or hashes it, before 6.43) in that encoding, so a password it
    cannot carry could never log in. The message names neither the character nor its position:
    both are pieces of the password.
    """
    sources = [key for key in _PASSWORD_SOURCES if key in table]
    if len(sources) != 1:
        got = " and ".join(sources) if sources else "none"
        table.fail(
            "", f"expected exactly one of password_env, password_file or password, got {got}"
        )
    for_what = f"the password of router {_show(router_id)}"
    key = sources[0]
    if key == "password_env":
        secret = table.read_secret_env(key, table.required_string(key), for_what=for_what)
    elif key == "password_file":
        secret = table.read_secret_file(key, table.required_string(key), for_what=for_what)
    else:
        secret = Secret(table.string(key, "", allow_empty=True, secret=True))
    try:
        secret.reveal().encode(encoding)
    except UnicodeEncodeError:
        table.fail(
            key,
            f"expected a password that encoding {_show(encoding)} can carry, got one with "
            f"characters outside it ({for_what}; set encoding to the router's code page)",
        )
    return secret


# -- checking ----------------------------------------------------------------------------------


class _Context:
    """What every check needs: where the configuration came from, for messages and file paths."""

    __slots__ = ("base_dir", "env", "source", "variables")

    def __init__(self, source: str, env: Mapping[str, str], base_dir: Path | None) -> None:
        self.source = source
        self.env = env
        self.base_dir = base_dir
        # Key paths whose value came from the environment, and the variable it came from:
        # a bad value is reported under the variable's name, which is what the user must fix.
        self.variables: dict[str, str] = {}

    def fail(self, path: str, problem: str) -> NoReturn:
        where = path
        for key, variable in self.variables.items():
            if path == key or path.startswith(key + "["):
                where = f"{variable} ({path})"
        prefix = f"{self.source}: {where}: " if where else f"{self.source}: "
        raise ConfigError(prefix + problem)


_MISSING: Final = object()

_Choice = TypeVar("_Choice", bound=str)


class _Table:
    """One TOML table being checked; every accessor raises ConfigError with the key's path."""

    __slots__ = ("ctx", "data", "path")

    def __init__(
        self, ctx: _Context, path: str, data: Mapping[str, object], allowed: Collection[str]
    ) -> None:
        self.ctx = ctx
        self.path = path
        self.data = data
        for key in data:
            if key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                suggestion = f' (did you mean "{hint[0]}"?)' if hint else ""
                self.fail(
                    key,
                    f"unknown key; expected one of {', '.join(sorted(allowed))}{suggestion}",
                )

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def key_path(self, key: str) -> str:
        if not key:
            return self.path
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> NoReturn:
        self.ctx.fail(self.key_path(key), problem)

    def table(self, key: str) -> _Table:
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            self.fail(key, f"expected a table, got {_show(value)}")
        return _Table(
            self.ctx, self.key_path(key), cast(Mapping[str, object], value), _SECTION_KEYS[key]
        )

    def tables(self, key: str) -> list[_Table]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            self.fail(key, f"expected an array of tables ([[{key}]]), got {_show(value)}")
        tables: list[_Table] = []
        for index, item in enumerate(cast(list[object], value)):
            path = f"{self.key_path(key)}[{index}]"
            if not isinstance(item, Mapping):
                self.ctx.fail(path, f"expected a table, got {_show(item)}")
            tables.append(_Table(self.ctx, path, cast(Mapping[str, object], item), _ROUTER_KEYS))
        return tables

    def string(
        self, key: str, default: str, *, allow_empty: bool = False, secret: bool = False
    ) -> str:
        value = self.data.get(key, _MISSING)
        return default if value is _MISSING else self._string(key, value, allow_empty, secret)

    def optional_string(self, key: str) -> str | None:
        value = self.data.get(key, _MISSING)
        return None if value is _MISSING else self._string(key, value, False, False)

    def required_string(self, key: str) -> str:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            self.fail(key, "missing required key; expected a non-empty string")
        return self._string(key, value, False, False)

    def _string(self, key: str, value: object, allow_empty: bool, secret: bool) -> str:
        expected = "a string" if allow_empty else "a non-empty string"
        if not isinstance(value, str) or not (value or allow_empty):
            # A secret in the wrong type is still a secret: say what type it was, not what it was.
            self.fail(key, f"expected {expected}, got {_kind(value) if secret else _show(value)}")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, list):
            self.fail(key, f"expected an array of non-empty strings, got {_show(value)}")
        return tuple(
            self._string(f"{key}[{index}]", item, False, False)
            for index, item in enumerate(cast(list[object], value))
        )

    def choice(self, key: str, choices: tuple[_Choice, ...], default: _Choice) -> _Choice:
        value: object = self.data.get(key, default)
        if value not in choices:
            self.fail(key, f"expected one of {', '.join(map(_show, choices))}, got {_show(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {_show(value)}")
        return value

    def integer(self, key: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        value = self.data.get(key, default)
        # bool is a subclass of int in Python, but `port = true` is a mistake, not port 1.
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value >= minimum
            and (maximum is None or value <= maximum)
        ):
            return value
        if maximum is not None:
            expected = f"an integer from {minimum} to {maximum}"
        elif minimum == 1:
            expected = "a positive integer"
        else:
            expected = f"an integer >= {minimum}"
        self.fail(key, f"expected {expected}, got {_show(value)}")

    def number(self, key: str, default: float, *, allow_zero: bool = False) -> float:
        value = self.data.get(key, default)
        return self._number(key, value, allow_zero)

    def optional_number(self, key: str) -> float | None:
        value = self.data.get(key, _MISSING)
        return None if value is _MISSING else self._number(key, value, False)

    def _number(self, key: str, value: object, allow_zero: bool) -> float:
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (value > 0 or (allow_zero and value == 0))
        ):
            return float(value)
        expected = "a non-negative number" if allow_zero else "a positive number"
        self.fail(key, f"expected {expected}, got {_show(value)}")

    def read_secret_env(self, key: str, variable: str, *, for_what: str) -> Secret:
        if variable not in self.ctx.env:
            self.fail(key, f"environment variable {_quote(variable)} is not set ({for_what})")
        return Secret(self.ctx.env[variable])

    def resolve(self, file_name: str) -> Path:
        """A file named in the configuration: relative paths are relative to its directory."""
        path = Path(file_name)
        if not path.is_absolute() and self.ctx.base_dir is not None:
            path = self.ctx.base_dir / path
        return path

    def read_secret_file(self, key: str, file_name: str, *, for_what: str) -> Secret:
        path = self.resolve(file_name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.fail(key, f"cannot read {_quote(str(path))}: {exc.strerror or exc} ({for_what})")
        except UnicodeDecodeError:
            self.fail(key, f"{_quote(str(path))} is not UTF-8 text ({for_what})")
        # Files written by `echo` or editors end with a newline that is not part of the secret.
        return Secret(text.rstrip("\r\n"))


# -- messages ----------------------------------------------------------------------------------

_SHOW_LIMIT: Final = 60


def _show(value: object) -> str:
    """A value as the user wrote it in TOML, short and on one line."""
    if isinstance(value, str):
        return _quote(value if len(value) <= _SHOW_LIMIT else value[: _SHOW_LIMIT - 3] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _kind(value)


def _quote(text: str) -> str:
    """Text in double quotes with control characters escaped, so the message stays one line."""
    return json.dumps(text, ensure_ascii=False)


def _kind(value: object) -> str:
    """What type a value is, without showing it."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return "a date or time"


def _toml_problem(message: str) -> str:
    # tomllib (3.11) puts the position at the end: "Invalid value (at line 2, column 5)".
    match = re.fullmatch(r"(?P<what>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)", message)
    if match is None:
        return f"invalid TOML: {message}"
    return f"line {match['line']}, column {match['col']}: invalid TOML: {match['what']}"


def _redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
