"""The pre-6.43 challenge response, as the gateway and the emulator compute it."""

from __future__ import annotations

import hashlib

import pytest

from gateway.emulator.session import legacy_response
from gateway.routeros import RouterAuthFailed, RouterProtocolError, challenge_response

CHALLENGE = "856780b7411eefd3abadee2058c149a3"


@pytest.mark.parametrize(
    ("challenge", "password", "response"),
    [
        # go-routeros proto_test.go TestLoginIncorrectPre643.
        pytest.param("abc123", "passTest", "0021277bff9ac7caf06aa608e46616d47f", id="go-routeros"),
        # The RouterOS API manual's example: the factory admin with an empty password.
        pytest.param(CHALLENGE, "", "005062f7a5ef124d34675bf3e81f56c556", id="manual"),
    ],
)
def test_published_vectors(challenge: str, password: str, response: str) -> None:
    """Both implementations give the responses published for real routers."""
    assert challenge_response(challenge, password, "ascii") == response
    assert legacy_response(password, challenge) == response


@pytest.mark.parametrize(
    ("password", "encoding"),
    [("pässwort", "utf-8"), ("pässwort", "latin-1"), ("пароль", "cp1251"), ("密码", "utf-8")],
)
def test_non_ascii_password_is_hashed_in_the_router_encoding(password: str, encoding: str) -> None:
    """A non-ASCII password is hashed as its bytes in the router's encoding, by both sides."""
    expected = hashlib.md5(
        b"\x00" + password.encode(encoding) + bytes.fromhex(CHALLENGE), usedforsecurity=False
    ).hexdigest()
    assert challenge_response(CHALLENGE, password, encoding) == "00" + expected
    assert legacy_response(password, CHALLENGE, encoding) == "00" + expected


def test_unencodable_password_is_reported_without_its_text() -> None:
    """A password the encoding cannot carry fails as an auth problem naming the encoding only."""
    with pytest.raises(RouterAuthFailed) as raised:
        challenge_response(CHALLENGE, "pä\u00dfwort", "ascii")
    message = str(raised.value)
    assert "'ascii'" in message
    for piece in ("ä", "ß", "\\xe4", "xe4", "position", "wort"):
        assert piece not in message


def test_challenge_that_is_not_hex() -> None:
    """A malformed challenge is the router's protocol error, not a crash."""
    with pytest.raises(RouterProtocolError, match="not hex"):
        challenge_response("zz", "secret", "utf-8")
