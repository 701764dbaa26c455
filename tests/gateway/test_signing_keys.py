"""Key files: which public keys and key sets the gateway accepts, and why it refuses the rest."""

from __future__ import annotations

import json

import pytest

from gateway.emulator.tls import make_certificate
from gateway.signing_keys import (
    MAX_JWKS_KEYS,
    KeyFileError,
    KeySet,
    hmac_key,
    keys_from_jwks,
    public_key_from_pem,
)
from tests.support.tokens import ec_key, jwk, jwks, private_pem, public_pem, rsa_key


def test_an_rsa_public_key_verifies_rs256_and_an_ec_key_es256() -> None:
    """The key's type decides its one algorithm; nothing in a token can change it."""
    assert public_key_from_pem(public_pem(rsa_key())).algorithm == "RS256"
    assert public_key_from_pem(public_pem(ec_key())).algorithm == "ES256"


def test_a_certificate_gives_its_public_key() -> None:
    """An operator may hand over the signer's certificate instead of a bare public key."""
    key = public_key_from_pem(make_certificate("portal").cert_pem)
    assert key.algorithm in ("RS256", "ES256")


@pytest.mark.parametrize(
    ("data", "refusal"),
    [
        (lambda: private_pem(rsa_key()), "holds a private key"),
        (lambda: public_pem(rsa_key(bits=1024)), "1024 bits; RS256 needs 2048"),
        (lambda: public_pem(ec_key("P-384")), "secp384r1; ES256 needs the P-256"),
        (lambda: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "loads"),
        (lambda: b"hello", "expected a PEM public key"),
        (lambda: b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certif"),
    ],
)
def test_unusable_pem_files_are_refused_saying_why(data: object, refusal: str) -> None:
    """A private key, a weak or odd key, or text that is no key stops start-up with a reason."""
    with pytest.raises(KeyFileError, match=refusal):
        public_key_from_pem(data())  # type: ignore[operator]


def test_a_jwks_gives_each_signing_key_with_its_kid() -> None:
    """Every RSA and P-256 signing key of a set is used, each under its own kid."""
    keys = keys_from_jwks(
        jwks(
            jwk(rsa_key(), "r1", alg="RS256", use="sig"),
            jwk(ec_key(), "e1"),
            jwk(rsa_key(n=1), "r2"),
        )
    )
    assert [(k.kid, k.algorithm) for k in keys] == [
        ("r1", "RS256"),
        ("e1", "ES256"),
        ("r2", "RS256"),
    ]


def test_keys_for_others_in_a_provider_set_are_skipped() -> None:
    """An identity provider's set may hold encryption keys and other algorithms: skipped."""
    keys = keys_from_jwks(
        jwks(
            jwk(rsa_key(), "enc", use="enc"),
            jwk(rsa_key(), "ps", alg="PS256"),
            jwk(ec_key("P-384"), "p384"),
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            jwk(rsa_key(), "mine"),
        )
    )
    assert [k.kid for k in keys] == ["mine"]


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("{", "not JSON"),
        ("[]", '"keys" array'),
        ('{"keys": {}}', '"keys" array'),
        ('{"keys": [1]}', r"keys\[0\]: expected a JSON object"),
        ('{"keys": []}', "no usable key"),
        (jwks(jwk(rsa_key(), "x", use="enc")), "no usable key"),
        (jwks({"kty": "oct", "k": "c2VjcmV0"}), "symmetric key"),
        (jwks(jwk(rsa_key(), "a"), jwk(rsa_key(n=1), "a")), "kid 'a' is used by another"),
        (jwks(jwk(rsa_key(), "a", alg="ES256")), "alg ES256 does not fit an RSA key"),
        (jwks(jwk(ec_key("P-384"), "a", alg="ES256")), "alg ES256 needs crv P-256"),
        (jwks(jwk(rsa_key(bits=1024), "x")), "1024 bits; RS256 needs"),
        (jwks({"kty": "RSA", "n": "!!", "e": "AQAB"}), "does not load"),
        (jwks({**jwk(rsa_key(), "a"), "kid": 5}), "kid must be a string"),
        (
            json.dumps({"keys": [{**jwk(rsa_key()), "d": "AQAB"}]}),
            "holds a private key",
        ),
        (jwks(*(jwk(ec_key(), str(n)) for n in range(MAX_JWKS_KEYS + 1))), "at most 64"),
    ],
)
def test_unusable_key_sets_are_refused_saying_why(text: str, refusal: str) -> None:
    """A set that is not one, has nothing usable, or holds secrets or contradictions is refused;
    no message shows key material."""
    with pytest.raises(KeyFileError, match=refusal) as caught:
        keys_from_jwks(text)
    assert "c2VjcmV0" not in str(caught.value)


def test_a_key_set_offers_a_token_only_the_keys_of_its_algorithm() -> None:
    """The secret is never a candidate for an RS256 token, nor an RSA key for an HS256 one."""
    rsa_a, rsa_b = keys_from_jwks(jwks(jwk(rsa_key(), "a"), jwk(rsa_key(n=1), "b")))
    secret = hmac_key("s" * 32)
    keys = KeySet((secret, rsa_a, rsa_b))
    assert keys.algorithms == ("HS256", "RS256")
    assert keys.candidates("HS256", None) == (secret,)
    assert keys.candidates("HS256", "a") == (secret,)
    assert keys.candidates("RS256", None) == (rsa_a, rsa_b)
    assert keys.candidates("RS256", "b") == (rsa_b,)
    assert keys.candidates("none", None) == ()
    assert "s" * 32 not in repr(secret)
