"""The keys that verify viewers' tokens, each pinned to the one algorithm it may verify.

Three sources, all optional, all usable at once (``[auth]``, README "Access control"):

- the HS256 shared secret (``jwt_secret_env`` / ``jwt_secret_file``): algorithm ``HS256``;
- a PEM public key or certificate (``public_key_file``): ``RS256`` for an RSA key of at least
  2048 bits, ``ES256`` for an EC key on P-256;
- a JSON Web Key Set (``jwks_file``, RFC 7517): every RSA key (``RS256``) and EC P-256 key
  (``ES256``) in it, each with its ``kid``; keys for other algorithms or for encryption
  (``"use": "enc"``) are skipped, as an identity provider's set may hold them.

Why pinning: a token names its own algorithm in its header, and a verifier that believes it can
be fooled. The classic forgery signs an ``HS256`` token with the RSA *public* key as the HMAC
secret; a verifier that looks the key up without the algorithm then checks the HMAC with that
same public key and accepts. Here a key verifies only its own algorithm: an ``HS256`` token is
checked against the shared secret alone (never a public key), an ``RS256`` token against RSA
keys alone, and ``none`` (or anything else) has no key at all.

Everything here is pure: bytes in, keys out, ``KeyFileError`` naming what is wrong. Reading the
files (at start-up, and again when they change) is ``gateway.config`` and
``gateway.keyfiles``'s business.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError

__all__ = [
    "ALGORITHMS",
    "MAX_JWKS_KEYS",
    "MAX_KEY_FILE_BYTES",
    "MIN_RSA_BITS",
    "Algorithm",
    "KeyFileError",
    "KeySet",
    "VerificationKey",
    "hmac_key",
    "keys_from_jwks",
    "public_key_from_pem",
]

Algorithm = Literal["HS256", "RS256", "ES256"]
"""The JWS algorithms the gateway verifies; nothing else (``none`` included) has a key."""

ALGORITHMS: Final[tuple[Algorithm, ...]] = ("HS256", "RS256", "ES256")

MIN_RSA_BITS: Final = 2048
"""The smallest RSA modulus accepted (NIST SP 800-131A: 1024-bit RSA is no longer safe)."""

MAX_KEY_FILE_BYTES: Final = 1024 * 1024
"""The largest key file read: a JWKS of a few dozen keys is a few kilobytes."""

MAX_JWKS_KEYS: Final = 64
"""The most usable keys a JWKS may hold: a token without ``kid`` is tried against each key of
its algorithm, so the set's size bounds what one bad token costs."""

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class KeyFileError(ValueError):
    """A key file's content cannot be used; the message says why, without any key material."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One key and the one algorithm it verifies.

    ``key`` is the HMAC secret (bytes) for ``HS256``, else a ``cryptography`` public key.
    ``kid`` is the JWKS key id (None for the secret and a PEM key). ``origin`` says where the
    key came from, for log lines (never the key itself).
    """

    algorithm: Algorithm
    key: bytes | PublicKey
    kid: str | None = None
    origin: str = ""

    def __repr__(self) -> str:
        return f"VerificationKey({self.algorithm}, kid={self.kid!r}, origin={self.origin!r})"


@dataclass(frozen=True, slots=True)
class KeySet:
    """Every key tokens may be verified with, by algorithm. Immutable: a reload builds a new one.

    ``candidates`` picks the keys for one token: those of its header's algorithm only, and of
    those, the ones with its ``kid`` when it names one (keys without a ``kid``, the secret and a
    PEM key, stay candidates for any ``kid``).
    """

    keys: tuple[VerificationKey, ...] = ()

    @classmethod
    def of(cls, *groups: Iterable[VerificationKey]) -> KeySet:
        return cls(tuple(key for group in groups for key in group))

    @property
    def algorithms(self) -> tuple[Algorithm, ...]:
        """The algorithms some key verifies, in ``ALGORITHMS`` order."""
        present = {key.algorithm for key in self.keys}
        return tuple(a for a in ALGORITHMS if a in present)

    def candidates(self, algorithm: str, kid: str | None) -> tuple[VerificationKey, ...]:
        """The keys a token signed with ``algorithm`` (and naming ``kid``) may be checked with."""
        return tuple(
            key
            for key in self.keys
            if key.algorithm == algorithm and (kid is None or key.kid is None or key.kid == kid)
        )


def hmac_key(secret: str) -> VerificationKey:
    """The HS256 key of the shared secret (its UTF-8 bytes)."""
    return VerificationKey("HS256", secret.encode("utf-8"), origin="jwt secret")


def _checked(key: object, where: str) -> tuple[Algorithm, PublicKey]:
    """The algorithm a public key verifies; ``KeyFileError`` for a key of no accepted kind."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyFileError(
                f"{where}: an RSA key of {key.key_size} bits; RS256 needs {MIN_RSA_BITS} or more"
            )
        return "RS256", key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyFileError(
                f"{where}: an EC key on {key.curve.name}; ES256 needs the P-256 curve (secp256r1)"
            )
        return "ES256", key
    raise KeyFileError(
        f"{where}: a {type(key).__name__.lstrip('_')}; expected an RSA key (RS256) or an EC "
        "P-256 key (ES256)"
    )


def public_key_from_pem(data: bytes | str, origin: str = "public_key_file") -> VerificationKey:
    """The key of a PEM public key (``-----BEGIN PUBLIC KEY-----``, or ``RSA PUBLIC KEY``) or of
    a PEM certificate (its subject's key; the certificate's dates and issuer are not checked:
    the file is trusted as configured).

    Raises ``KeyFileError`` for a private key (give the gateway the public half only), for
    anything that does not load, and for keys other than RSA of 2048 bits or more and EC P-256.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"larger than {MAX_KEY_FILE_BYTES} bytes")
    if b"PRIVATE KEY-----" in raw:
        raise KeyFileError(
            "holds a private key; give the gateway the public key only (openssl pkey -in "
            "private.pem -pubout), and keep the private key with whoever signs tokens"
        )
    loaded: object
    if b"-----BEGIN CERTIFICATE-----" in raw:
        try:
            loaded = x509.load_pem_x509_certificate(raw).public_key()
        except ValueError:
            raise KeyFileError("a PEM certificate that does not load") from None
    else:
        try:
            loaded = load_pem_public_key(raw)
        except (ValueError, TypeError):
            raise KeyFileError(
                "expected a PEM public key (-----BEGIN PUBLIC KEY-----) or certificate, found "
                "none that loads"
            ) from None
        except Exception:  # noqa: BLE001 - cryptography raises its own types for odd input
            raise KeyFileError("expected a PEM public key, found one that does not load") from None
    algorithm, key = _checked(loaded, "the key")
    return VerificationKey(algorithm, key, origin=origin)


def keys_from_jwks(data: bytes | str, origin: str = "jwks_file") -> tuple[VerificationKey, ...]:
    """The usable keys of a JSON Web Key Set (``{"keys": [...]}``, RFC 7517 section 5).

    Used: RSA keys (``RS256``) and EC P-256 keys (``ES256``) whose ``alg``, when given, says
    the same, and whose ``use``, when given, is ``sig``. Skipped: keys for other algorithms and
    encryption keys, which a provider's set may hold for other parties. Raises
    ``KeyFileError`` for a file that is not such a set, a used key that does not load, a
    private key (``d``) or a symmetric key (``oct``: its secret would be in a file meant to be
    public), an ``alg`` that contradicts the key, duplicate ``kid``s, and a set with no usable
    key or more than ``MAX_JWKS_KEYS``.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"larger than {MAX_KEY_FILE_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise KeyFileError(
            'expected a JSON Web Key Set ({"keys": [...]}), got text that is not JSON'
        ) from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise KeyFileError('expected a JSON Web Key Set: an object with a "keys" array')
    found: list[VerificationKey] = []
    kids: set[str] = set()
    for index, entry in enumerate(cast(list[object], keys)):
        where = f"keys[{index}]"
        if not isinstance(entry, dict):
            raise KeyFileError(f"{where}: expected a JSON object (a JWK)")
        jwk = cast(dict[str, object], entry)
        key = _jwk(jwk, where, origin)
        if key is None:
            continue
        if key.kid is not None:
            if key.kid in kids:
                raise KeyFileError(f"{where}: kid {key.kid!r} is used by another key too")
            kids.add(key.kid)
        found.append(key)
    if not found:
        raise KeyFileError(
            "no usable key: expected at least one RSA (RS256) or EC P-256 (ES256) signing key"
        )
    if len(found) > MAX_JWKS_KEYS:
        raise KeyFileError(f"{len(found)} usable keys; at most {MAX_JWKS_KEYS}")
    return tuple(found)


_JWK_ALGORITHMS: Final[Mapping[str, Algorithm]] = {"RSA": "RS256", "EC": "ES256"}


def _jwk(jwk: dict[str, object], where: str, origin: str) -> VerificationKey | None:
    """One JWK as a key; None when it is for another party (see ``keys_from_jwks``)."""
    kty = jwk.get("kty")
    alg = jwk.get("alg")
    use = jwk.get("use")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise KeyFileError(f"{where}: kid must be a string")
    if kty == "oct":
        raise KeyFileError(
            f"{where}: a symmetric key (kty oct) does not belong in a key set; give an HS256 "
            "secret as jwt_secret_env or jwt_secret_file"
        )
    if "d" in jwk:
        raise KeyFileError(
            f"{where}: holds a private key (d); publish only the public key in the set"
        )
    if use is not None and use != "sig":
        return None
    if not isinstance(kty, str) or kty not in _JWK_ALGORITHMS:
        return None
    algorithm = _JWK_ALGORITHMS[kty]
    if kty == "EC" and jwk.get("crv") != "P-256":
        if alg in (None, "ES256"):
            if alg is None:
                return None  # an EC key for ES384 or ES512
            raise KeyFileError(f"{where}: alg ES256 needs crv P-256, got {jwk.get('crv')!r}")
        return None
    if alg is not None and alg != algorithm:
        if alg in ("RS256", "ES256", "HS256"):
            raise KeyFileError(f"{where}: alg {alg} does not fit an {kty} key")
        return None  # RS512, PS256...: another algorithm this gateway does not verify
    try:
        loaded = (RSAAlgorithm if kty == "RSA" else ECAlgorithm).from_jwk(jwk)
    except (InvalidKeyError, ValueError, TypeError, KeyError):
        raise KeyFileError(f"{where}: an {kty} key that does not load") from None
    checked, key = _checked(loaded, where)
    return VerificationKey(checked, key, kid=kid, origin=origin)
