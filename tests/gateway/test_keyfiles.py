"""Key rotation: a changed key file takes effect; a broken one keeps the keys in use, said once."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from gateway.auth import AuthError, Verifier
from gateway.config import AuthSettings, settings_from_dict
from gateway.keyfiles import KeyFiles
from tests.support.tokens import ec_key, jwk, jwks, public_pem, rsa_key, signed

ROUTER = {"id": "core", "host": "192.0.2.1", "username": "u", "password": "p"}


def auth(tmp_path: Path, **keys: str) -> AuthSettings:
    """``[auth]`` in jwt mode with these key file settings, loaded as from a file there."""
    document = {"auth": {"mode": "jwt", **keys}, "routers": [ROUTER]}
    return settings_from_dict(document, source="t", env={}, base_dir=tmp_path).auth


def replace(path: Path, text: str) -> None:
    """Write a new version of a file the way deployments do: a new file renamed over it."""
    new = path.with_suffix(".new")
    new.write_text(text)
    os.replace(new, path)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_a_rotated_jwks_takes_effect_and_a_broken_one_keeps_the_old_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """New keys work after one look at the file; a half-written file changes nothing and is
    reported once; the next good file is taken."""
    caplog.set_level(logging.INFO, logger="gateway.keyfiles")
    path = tmp_path / "jwks.json"
    path.write_text(jwks(jwk(rsa_key(), "old")))
    files = KeyFiles(auth(tmp_path, jwks_file="jwks.json"))
    verifier = Verifier(AuthSettings(mode="jwt"), files.keys)
    old, new = signed(rsa_key(), kid="old"), signed(ec_key(), kid="new")
    assert verifier.authorise(old).subject == "cust-1"
    await files.check()
    assert warnings(caplog) == []

    replace(path, jwks(jwk(rsa_key(), "old"), jwk(ec_key(), "new")))
    await files.check()
    assert verifier.authorise(new).subject == "cust-1"
    assert verifier.authorise(old).subject == "cust-1"

    replace(path, '{"keys": [')
    await files.check()
    await files.check()
    assert verifier.authorise(new).subject == "cust-1"
    [warning] = warnings(caplog)
    assert "auth.jwks_file" in warning
    assert "not usable" in warning
    assert "the keys read before stay in use" in warning

    replace(path, jwks(jwk(ec_key(), "new")))
    await files.check()
    assert verifier.authorise(new).subject == "cust-1"
    with pytest.raises(AuthError, match="'RS256' is not accepted"):
        verifier.authorise(old)


async def test_a_vanished_key_file_keeps_the_keys_in_use(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A key file deleted by mistake is reported once and the gateway goes on verifying."""
    path = tmp_path / "signer.pem"
    path.write_bytes(public_pem(rsa_key()))
    files = KeyFiles(auth(tmp_path, public_key_file="signer.pem"))
    verifier = Verifier(AuthSettings(mode="jwt"), files.keys)
    path.unlink()
    await files.check()
    await files.check()
    assert verifier.authorise(signed(rsa_key())).subject == "cust-1"
    [warning] = warnings(caplog)
    assert "auth.public_key_file: cannot read" in warning
    path.write_bytes(public_pem(ec_key()))
    await files.check()
    assert verifier.authorise(signed(ec_key())).subject == "cust-1"
    with pytest.raises(AuthError, match="'RS256' is not accepted"):
        verifier.authorise(signed(rsa_key()))
