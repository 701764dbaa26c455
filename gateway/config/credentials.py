"""Keys, secrets and certificates: the fields read from files or the environment.

The JWT secret (from a variable or a file, long enough for HS256), the public key and JWKS files
(loaded with ``gateway.signing_keys`` to prove they are usable), a router's password (from its
one source, fitting the router's encoding), its CA file and its certificate's fingerprint. Each
needs another field of its table (``mode``, ``tls``, ``encoding``...) and reads it through the
table's reader (``gateway.config.fields``). No message holds a secret's value or a piece of it.
"""

from __future__ import annotations

import re
import ssl
from typing import Any, Final, Protocol

from gateway.config.schema import CaFile, JwtSecret, KeyFile, RouterPassword
from gateway.config.secret import Secret
from gateway.config.table import Table, quote, show
from gateway.signing_keys import (
    MAX_KEY_FILE_BYTES,
    KeyFileError,
    keys_from_jwks,
    public_key_from_pem,
)

__all__ = [
    "MIN_JWT_SECRET_BYTES",
    "FieldReader",
    "ca_file",
    "fingerprint",
    "jwt_secret",
    "key_file",
    "router_password",
]


MIN_JWT_SECRET_BYTES: Final = 32
"""The shortest HS256 secret accepted, in bytes of its UTF-8 text (RFC 7518, section 3.2)."""

_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")


class FieldReader(Protocol):
    """What these checks need of the reader of one table (``gateway.config.fields.Reader``)."""

    table: Table
    values: dict[str, Any]
    """The fields read so far; a check sets the field its file's content goes to."""

    def value(self, name: str) -> Any:
        """The checked value of the field ``name``, read first if it was not yet."""
        ...


def key_file(reader: FieldReader, key: str, kind: KeyFile) -> str | None:
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


def jwt_secret(reader: FieldReader, kind: JwtSecret) -> Secret | None:
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


def router_password(reader: FieldReader, kind: RouterPassword) -> Secret:
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


def ca_file(reader: FieldReader, key: str, kind: CaFile) -> str | None:
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


def fingerprint(reader: FieldReader, key: str) -> str | None:
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
