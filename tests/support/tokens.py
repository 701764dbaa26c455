"""Signing keys and tokens for the tests, as a billing system or portal would mint them.

Keys are made once per process (an RSA key takes a moment); every token is signed with PyJWT,
the way the README's minting examples do it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

SECRET: Final = "a-long-enough-test-secret-for-hs256!"
"""The HS256 secret of the tests' gateways (32 bytes or more, as the configuration demands)."""


@functools.cache
def rsa_key(bits: int = 2048, n: int = 0) -> rsa.RSAPrivateKey:
    """An RSA private key (``n`` tells apart several of one size)."""
    del n
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ec_key(curve: str = "P-256", n: int = 0) -> ec.EllipticCurvePrivateKey:
    """An EC private key on ``curve`` (P-256, P-384)."""
    del n
    curves: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}
    return ec.generate_private_key(curves[curve])


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def public_pem(key: PrivateKey) -> bytes:
    """The public half of ``key`` as a PEM ``PUBLIC KEY`` block."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def jwk(key: PrivateKey, kid: str | None = None, **extra: object) -> dict[str, Any]:
    """The public JWK of ``key`` (with ``kid`` and any ``extra`` members)."""
    if isinstance(key, rsa.RSAPrivateKey):
        text = RSAAlgorithm.to_jwk(key.public_key())
    else:
        text = ECAlgorithm.to_jwk(key.public_key())
    data: dict[str, Any] = json.loads(text)
    if kid is not None:
        data["kid"] = kid
    data.update(extra)
    return data


def jwks(*keys: Mapping[str, Any]) -> str:
    """A JSON Web Key Set of these JWKs."""
    return json.dumps({"keys": list(keys)})


def claims(lifetime: float = 300, **more: Any) -> dict[str, Any]:
    """A customer's claims: subject ``cust-1``, router ``core``, expiring in ``lifetime`` s."""
    return {"sub": "cust-1", "exp": int(time.time() + lifetime), "routers": ["core"], **more}


def hs256(lifetime: float = 300, secret: str = SECRET, **more: Any) -> str:
    """An HS256 token signed with the tests' secret."""
    return jwt.encode(claims(lifetime, **more), secret, algorithm="HS256")


def signed(key: PrivateKey, lifetime: float = 300, kid: str | None = None, **more: Any) -> str:
    """A token signed with ``key``: RS256 for RSA, ES256 for EC."""
    algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims(lifetime, **more), key, algorithm=algorithm, headers=headers)


def unsigned(lifetime: float = 300, **more: Any) -> str:
    """A token with ``"alg": "none"`` and no signature (RFC 7519 section 6), as an attacker
    writes it."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims(lifetime, **more)).encode())
    return f"{header}.{payload}."


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_hs256(public_key_pem: bytes, lifetime: float = 300, **more: Any) -> str:
    """The algorithm-confusion forgery: an HS256 token whose HMAC key is an RSA *public* key's
    PEM text, which anyone can download. PyJWT refuses to sign that way, so it is built by hand
    (RFC 7515: base64url(header) . base64url(payload) . base64url(HMAC-SHA256))."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims(lifetime, **more)).encode())
    signature = hmac.new(public_key_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"
