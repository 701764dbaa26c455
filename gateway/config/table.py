"""Checking one TOML table, and the one-line messages a mistake gets.

Every accessor of :class:`Table` returns a checked value or raises :class:`ConfigError` as
``<source>: <key path>: expected ..., got ...``, naming the environment variable instead when the
value came from one. Values are shown as the user wrote them in TOML (``_show``), and a secret
only by its type.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Final, NoReturn, TypeVar, cast

from gateway.config.secret import Secret

__all__ = ["ConfigError", "Context", "Table", "quote", "show", "toml_problem"]


class ConfigError(Exception):
    """The configuration cannot be used. The message is one line: ``<file>: <key>: <problem>``.

    It never contains a secret's value.
    """


class Context:
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


class Table:
    """One TOML table being checked; every accessor raises ConfigError with the key's path.

    ``allowed`` are the keys the table may hold; any other is reported at once, with the closest
    allowed key as a suggestion.
    """

    __slots__ = ("ctx", "data", "path")

    def __init__(
        self, ctx: Context, path: str, data: Mapping[str, object], allowed: Collection[str]
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

    def table(self, key: str, allowed: Collection[str]) -> Table:
        """The sub-table ``key`` (empty when absent), holding only ``allowed`` keys."""
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            self.fail(key, f"expected a table, got {show(value)}")
        return Table(self.ctx, self.key_path(key), cast(Mapping[str, object], value), allowed)

    def tables(self, key: str, allowed: Collection[str]) -> list[Table]:
        """The array of tables ``[[key]]`` (empty when absent), each holding ``allowed`` keys."""
        value = self.data.get(key, [])
        if not isinstance(value, list):
            self.fail(key, f"expected an array of tables ([[{key}]]), got {show(value)}")
        tables: list[Table] = []
        for index, item in enumerate(cast(list[object], value)):
            path = f"{self.key_path(key)}[{index}]"
            if not isinstance(item, Mapping):
                self.ctx.fail(path, f"expected a table, got {show(item)}")
            tables.append(Table(self.ctx, path, cast(Mapping[str, object], item), allowed))
        return tables

    def string(
        self, key: str, default: str, *, allow_empty: bool = False, secret: bool = False
    ) -> str:
        value = self.data.get(key, _MISSING)
        return default if value is _MISSING else self._string(key, value, allow_empty, secret)

    def optional_string(self, key: str, *, secret: bool = False) -> str | None:
        value = self.data.get(key, _MISSING)
        return None if value is _MISSING else self._string(key, value, False, secret)

    def required_string(self, key: str, *, secret: bool = False) -> str:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            self.fail(key, "missing required key; expected a non-empty string")
        return self._string(key, value, False, secret)

    def _string(self, key: str, value: object, allow_empty: bool, secret: bool) -> str:
        expected = "a string" if allow_empty else "a non-empty string"
        if not isinstance(value, str) or not (value or allow_empty):
            # A secret in the wrong type is still a secret: say what type it was, not what it was.
            got = ("an empty string" if value == "" else _kind(value)) if secret else show(value)
            self.fail(key, f"expected {expected}, got {got}")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, list):
            self.fail(key, f"expected an array of non-empty strings, got {show(value)}")
        return tuple(
            self._string(f"{key}[{index}]", item, False, False)
            for index, item in enumerate(cast(list[object], value))
        )

    def choice(self, key: str, choices: tuple[_Choice, ...], default: _Choice) -> _Choice:
        value: object = self.data.get(key, default)
        if value not in choices:
            self.fail(key, f"expected one of {', '.join(map(show, choices))}, got {show(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {show(value)}")
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
        self.fail(key, f"expected {expected}, got {show(value)}")

    def number(self, key: str, default: float, *, allow_zero: bool = False) -> float:
        value = self.data.get(key, default)
        return self._number(key, value, allow_zero)

    def optional_number(self, key: str) -> float | None:
        value = self.data.get(key, _MISSING)
        return None if value is _MISSING else self._number(key, value, False)

    def _number(self, key: str, value: object, allow_zero: bool) -> float:
        number = _float(value)
        if number is not None and (number > 0 or (allow_zero and number == 0)):
            return number
        expected = "a non-negative number" if allow_zero else "a positive number"
        self.fail(key, f"expected {expected}, got {show(value)}")

    def read_secret_env(self, key: str, variable: str, *, for_what: str) -> Secret:
        """The secret in the environment variable named ``variable`` (the value of ``key``).

        The name is shown in a message only when it is one (letters, digits and ``_``, not
        starting with a digit): an operator who pastes the secret itself into the key must not
        find it on stderr and in the log collector.
        """
        if _ENV_NAME.fullmatch(variable) is None:
            self.fail(
                key,
                "expected the name of an environment variable (letters, digits and _), got a "
                f"value that is not an environment variable name; not shown, as it may be a "
                f"secret ({for_what})",
            )
        if variable not in self.ctx.env:
            self.fail(key, f"environment variable {quote(variable)} is not set ({for_what})")
        return Secret(self.ctx.env[variable])

    def resolve(self, file_name: str) -> Path:
        """A file named in the configuration: relative paths are relative to its directory."""
        path = Path(file_name)
        if not path.is_absolute() and self.ctx.base_dir is not None:
            path = self.ctx.base_dir / path
        return path

    def read_secret_file(self, key: str, file_name: str, *, for_what: str) -> Secret:
        """The secret in the file named ``file_name`` (the value of ``key``), without its final
        line break.

        The file's path is shown in a message only when ``file_name`` looks like one (see
        :func:`_looks_like_path`), for the reason given in :meth:`read_secret_env`.
        """
        path = self.resolve(file_name)
        if _looks_like_path(file_name):
            shown = quote(str(path))
        else:
            shown = (
                "the file it names (not shown: it does not look like a path, and may be a secret)"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.fail(key, f"cannot read {shown}: {exc.strerror or exc} ({for_what})")
        except UnicodeDecodeError:
            self.fail(key, f"{shown} is not UTF-8 text ({for_what})")
        except ValueError:
            # A NUL character, which no path can hold.
            self.fail(key, f"expected a file path, got a value that is not one ({for_what})")
        # Files written by `echo` or editors end with a newline that is not part of the secret.
        return Secret(text.rstrip("\r\n"))


# -- secret sources ----------------------------------------------------------------------------

# What a name of an environment variable is (POSIX: letters, digits and "_", no digit first).
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The characters of file paths as deployments write them: POSIX's portable file name characters
# (letters, digits, ".", "_", "-") and "/".
_PATH_CHARACTERS: Final = re.compile(r"[A-Za-z0-9._/-]+")


def _looks_like_path(text: str) -> bool:
    """Whether ``text`` looks like a file path rather than a pasted secret: portable path
    characters only, with a ``/`` or a ``.`` (``/run/secrets/core-1``, ``core-1.pass``).

    A path that does not look like one (``my secret``) is still read; only a message about it
    leaves it out.
    """
    return _PATH_CHARACTERS.fullmatch(text) is not None and ("/" in text or "." in text)


# -- messages ----------------------------------------------------------------------------------

_SHOW_LIMIT: Final = 60


def show(value: object) -> str:
    """A value as the user wrote it in TOML, short and on one line."""
    if isinstance(value, str):
        return quote(value if len(value) <= _SHOW_LIMIT else value[: _SHOW_LIMIT - 3] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) >= 10**_SHOW_LIMIT:
        # repr() refuses integers past 4300 digits, and nobody reads 60 of them.
        return "an integer too large to show"
    if isinstance(value, int | float):
        return repr(value)
    return _kind(value)


def _float(value: object) -> float | None:
    """A TOML number as a finite float; None for anything else (booleans, inf, nan, and
    integers too large for a float)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def quote(text: str) -> str:
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


def toml_problem(message: str) -> str:
    """tomllib's error as ``line L, column C: invalid TOML: <what>``."""
    # tomllib (3.11) puts the position at the end: "Invalid value (at line 2, column 5)".
    match = re.fullmatch(r"(?P<what>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)", message)
    if match is None:
        return f"invalid TOML: {message}"
    return f"line {match['line']}, column {match['col']}: invalid TOML: {match['what']}"
