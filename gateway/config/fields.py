"""Reading one table into one settings class: each field once, checked by its kind.

The kind of a field (``gateway.config.schema``) says how its value is checked: the table's own
checks (``gateway.config.table``) for strings, numbers and choices, the checks here for values
with a shape of their own (origins, networks, name filters, URLs), and
``gateway.config.credentials`` for the fields read from files or the environment.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

from gateway.config.credentials import ca_file, fingerprint, jwt_secret, key_file, router_password
from gateway.config.schema import (
    CaFile,
    Choice,
    Derived,
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
from gateway.config.secret import redact_url
from gateway.config.table import Table, quote, show
from gateway.core.filters import EXACT, name_patterns
from gateway.core.origins import OriginError, normalise_origin

__all__ = ["Reader"]


class Reader:
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


def _read(reader: Reader, spec: SettingField) -> object:
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
            return key_file(reader, key, kind)
        case JwtSecret():
            return jwt_secret(reader, kind)
        case RouterPassword():
            return router_password(reader, kind)
        case CaFile():
            return ca_file(reader, key, kind)
        case Fingerprint():
            return fingerprint(reader, key)
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
