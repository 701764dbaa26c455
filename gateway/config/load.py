"""Reading the configuration: a TOML file, then ``GATEWAY_<SECTION>_<KEY>`` environment overrides.

Everything is checked at start-up and turned into the frozen settings of
``gateway.config.settings``, so a typo stops the gateway with one line naming the file, the key
and what was expected, instead of surfacing as a hung poller an hour later. Secrets (router
passwords, the JWT secret) are read from the environment or from files, kept in ``Secret``, and
never written into any message, ``repr`` or log line.

Which keys a table accepts, how each is checked and which environment variables exist all come
from the settings fields (``gateway.config.schema.settings_fields``): nothing here lists keys.
This module reads the file and the environment, and puts the sections together (the
``[[routers]]`` tables with unique ids); each table's fields are read and checked by
``gateway.config.fields``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final, cast, get_args, get_origin, get_type_hints

from gateway.config.fields import Reader
from gateway.config.routers import RouterSettings
from gateway.config.schema import EnvKind, JwtSecret, RouterPassword, settings_fields
from gateway.config.settings import Settings
from gateway.config.table import ConfigError, Context, Table, show, toml_problem

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
            sections[name] = Reader(top.table(name, accepted_keys(cls)), cls).build()
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


# -- routers -----------------------------------------------------------------------------------


def _routers(ctx: Context, tables: list[Table]) -> tuple[RouterSettings, ...]:
    if not tables:
        ctx.fail("routers", "expected at least one [[routers]] table, got none")
    routers: list[RouterSettings] = []
    first_use: dict[str, int] = {}
    for index, table in enumerate(tables):
        router: RouterSettings = Reader(table, RouterSettings).build()
        if router.id in first_use:
            table.fail(
                "id",
                f"expected a unique router id, got {show(router.id)} "
                f"(already used by routers[{first_use[router.id]}])",
            )
        first_use[router.id] = index
        routers.append(router)
    return tuple(routers)
