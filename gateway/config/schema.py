"""How a setting declares its key: what the file may hold there, and what it means.

A settings field is written once, as ``name: Annotated[type, Kind("what it means", ...)] =
default`` (see ``gateway.config.settings``). The kind is plain data: the loader
(``gateway.config.load`` and ``gateway.config.fields``) reads it to know which TOML keys the
field comes from, how a value is checked and what a mistake is told, how a
``GATEWAY_<SECTION>_<KEY>`` variable is parsed, and the field's one-line doc.
:func:`settings_fields` gives all of that per field, so the list of accepted keys, the
environment overrides and the checks cannot drift apart.

Plain kinds (:class:`Text`, :class:`Number`, :class:`Integer`, :class:`Flag`, :class:`Choice`,
:class:`Texts`) need no code of their own: a new key of one of those kinds is one new field. The
others name a check that has its own code in the loader: ``gateway.config.fields`` (origins,
networks, name filters, URLs) or ``gateway.config.credentials`` (secrets, key and TLS files).
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints

__all__ = [
    "REQUIRED",
    "CaFile",
    "Choice",
    "Derived",
    "EnvKind",
    "Fingerprint",
    "Flag",
    "Getter",
    "Integer",
    "JwtSecret",
    "KeyFile",
    "Kind",
    "NameFilter",
    "Networks",
    "Number",
    "Origins",
    "PageUrl",
    "RouterPassword",
    "SettingField",
    "Text",
    "Texts",
    "Url",
    "Words",
    "settings_fields",
]

EnvKind = Literal["str", "int", "float", "bool", "list"]
"""What a ``GATEWAY_<SECTION>_<KEY>`` value is parsed to before it is checked like a file value
(``list``: comma-separated)."""

Getter = Callable[[str], Any]
"""The value of another field of the same table, by name, read (and checked) on demand."""

REQUIRED: Any = dataclasses.MISSING
"""The ``default`` of a field the file must set."""


@dataclass(frozen=True, slots=True)
class Kind:
    """What every kind has: the field's doc (one line, units included)."""

    doc: str

    env: ClassVar[EnvKind] = "str"

    def keys(self, field: str) -> tuple[str, ...]:
        """The TOML keys this field is read from: its own name unless the kind says otherwise."""
        return (field,)


@dataclass(frozen=True, slots=True)
class Text(Kind):
    """A non-empty string (``allow_empty``: any string).

    ``valid``, when given, must accept the text, else the mistake reads ``expected <expected>,
    got "<text>"``. ``fallback`` computes the default from other fields (a router's ``name`` is
    its ``id``).
    """

    allow_empty: bool = False
    valid: Callable[[str], bool] | None = None
    expected: str = ""
    fallback: Callable[[Getter], str] | None = None


@dataclass(frozen=True, slots=True)
class Number(Kind):
    """A finite number, read as a float: positive, or non-negative with ``allow_zero``.

    ``at_least`` names another field of the same table this one may not be below; ``minimum``
    is a fixed lower bound (with its reason, ``why``, for the message).
    """

    allow_zero: bool = False
    at_least: str | None = None
    minimum: float | None = None
    why: str = ""

    env: ClassVar[EnvKind] = "float"


@dataclass(frozen=True, slots=True)
class Integer(Kind):
    """An integer from ``minimum`` to ``maximum`` (no upper bound when None); never a boolean.

    ``fallback`` computes the default from other fields (a router's port follows ``tls``).
    """

    minimum: int = 1
    maximum: int | None = None
    fallback: Callable[[Getter], int] | None = None

    env: ClassVar[EnvKind] = "int"


@dataclass(frozen=True, slots=True)
class Flag(Kind):
    """``true`` or ``false`` (from the environment: the words ``true`` and ``false``)."""

    env: ClassVar[EnvKind] = "bool"


@dataclass(frozen=True, slots=True)
class Choice(Kind):
    """One of the words of the field's ``Literal`` type, in its case."""


@dataclass(frozen=True, slots=True)
class Texts(Kind):
    """An array of non-empty strings (from the environment: comma-separated)."""

    env: ClassVar[EnvKind] = "list"


@dataclass(frozen=True, slots=True)
class Words(Kind):
    """An array of at least one of ``words``, each at most once; kept in the order of
    ``words`` (so equal settings compare equal however the file ordered them)."""

    words: tuple[str, ...] = ()

    env: ClassVar[EnvKind] = "list"


@dataclass(frozen=True, slots=True)
class NameFilter(Kind):
    """A name filter list, as the websocket protocol's ``interfaces``: an array whose entries are
    name globs (strings) or ``{exact = "name"}`` tables, kept as globs (an exact name as its
    ``literal_glob``), within the protocol's limits (``gateway.core.filters.name_patterns``)."""

    env: ClassVar[EnvKind] = "list"


@dataclass(frozen=True, slots=True)
class Origins(Texts):
    """An array of web origins, kept in the form browsers send (``gateway.core.origins``)."""


@dataclass(frozen=True, slots=True)
class Networks(Texts):
    """An array of IP networks in CIDR notation (``"10.0.0.0/8"``, ``"2001:db8::/32"``) or single
    addresses, kept in canonical form (host bits cleared)."""


@dataclass(frozen=True, slots=True)
class PageUrl(Kind):
    """``""``, an absolute ``http``/``https`` URL, or a path on the gateway's own site
    (``/portal/token``): an address the dashboard page fetches."""


@dataclass(frozen=True, slots=True)
class Url(Kind):
    """``""`` or a URL with one of ``schemes``. It may carry a password: never shown in errors."""

    schemes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JwtSecret(Kind):
    """The JWT secret, read in ``jwt`` mode from the variable named by ``env_key`` (``default_env``
    when neither key is set) or from the file named by ``file_key``: at most one of the two."""

    env_key: str = "jwt_secret_env"
    file_key: str = "jwt_secret_file"
    default_env: str = "GATEWAY_JWT_SECRET"

    def keys(self, field: str) -> tuple[str, ...]:
        return (self.env_key, self.file_key)


@dataclass(frozen=True, slots=True)
class KeyFile(Kind):
    """A file of token verification keys: a PEM public key or certificate, or (``jwks``) a JSON
    Web Key Set. The field is the file's resolved path; its text goes to the field named by
    ``content_field``, after its keys were checked (``gateway.signing_keys``)."""

    content_field: str = ""
    jwks: bool = False


@dataclass(frozen=True, slots=True)
class RouterPassword(Kind):
    """A router's password from exactly one of: the variable named by ``env_key``, the file named
    by ``file_key``, or the text of ``inline_key``; checked to fit the router's ``encoding``."""

    env_key: str = "password_env"
    file_key: str = "password_file"
    inline_key: str = "password"

    def keys(self, field: str) -> tuple[str, ...]:
        return (self.env_key, self.file_key, self.inline_key)


@dataclass(frozen=True, slots=True)
class CaFile(Kind):
    """A PEM file of CA certificates (needs ``tls``): the field is its resolved path, and the
    certificates go to the field named by ``pem_field``."""

    pem_field: str = ""


@dataclass(frozen=True, slots=True)
class Fingerprint(Kind):
    """A SHA-256 certificate fingerprint (needs ``tls``), kept as 64 lower-case hex digits."""


@dataclass(frozen=True, slots=True)
class Derived(Kind):
    """Not a key: the value is set while the field named ``source`` is read."""

    source: str = ""

    def keys(self, field: str) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class SettingField:
    """One field of a settings class, as the loader and the tests see it.

    ``default`` is :data:`REQUIRED` for a field without one; ``optional`` is true when the type
    allows ``None``; ``choices`` are the ``Literal`` words of a :class:`Choice`.
    """

    name: str
    kind: Kind
    keys: tuple[str, ...]
    default: Any
    optional: bool
    choices: tuple[str, ...]

    @property
    def required(self) -> bool:
        """Whether the file must set this key (no default, and none computed)."""
        fallback = getattr(self.kind, "fallback", None)
        return self.default is REQUIRED and fallback is None


@functools.cache
def settings_fields(cls: type) -> tuple[SettingField, ...]:
    """Every field of the settings dataclass ``cls``, in declaration order.

    Raises TypeError for a field declared without a kind (``Annotated[type, Kind(...)]``): a
    field the loader would not know how to read.
    """
    hints = get_type_hints(cls, include_extras=True)
    found: list[SettingField] = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        kinds = [m for m in get_args(hint)[1:] if isinstance(m, Kind)]
        if get_origin(hint) is not Annotated or len(kinds) != 1:
            raise TypeError(f"{cls.__name__}.{field.name}: declare it as Annotated[type, Kind]")
        base = get_args(hint)[0]
        members = get_args(base) if get_origin(base) in (Union, types.UnionType) else (base,)
        choices = get_args(base) if get_origin(base) is Literal else ()
        found.append(
            SettingField(
                name=field.name,
                kind=kinds[0],
                keys=kinds[0].keys(field.name),
                default=field.default,
                optional=type(None) in members,
                choices=tuple(str(c) for c in choices),
            )
        )
    return tuple(found)
