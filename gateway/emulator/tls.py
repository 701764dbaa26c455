"""TLS for the emulator's api-ssl: with a certificate, or anonymous Diffie-Hellman only.

A RouterOS api-ssl service runs in one of two ways (PROTOCOL.md §1):

- with a certificate set (``/ip service set api-ssl certificate=...``): ordinary TLS, the
  router proves who it is;
- without one: the router offers only anonymous Diffie-Hellman suites (``ADH-AES256-GCM-SHA384``,
  ``ADH-AES128-SHA256``, ...) over TLS 1.2. TLS 1.3 has no anonymous suites, so such a session
  is always TLS 1.2, and a client must enable aNULL suites at OpenSSL security level 0.

:func:`anonymous_context` serves the second kind; :meth:`Certificate.server_context` serves
the first from a :class:`Certificate`, which is either read from PEM files or generated here
(:func:`make_certificate`, self-signed or issued by a test CA). Generating one needs the
``cryptography`` package (a dependency of the gateway, for its token keys), imported only then,
so the emulator's other modes load without it.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# RFC 7919 group ffdhe2048 (as ``openssl genpkey -genparam -algorithm DH -pkeyopt
# group:ffdhe2048`` writes it). Anonymous DH needs the server to hold DH parameters: Python's
# ssl module has no automatic choice for finite-field DH, only for elliptic curves.
FFDHE2048_PEM: Final = """\
-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""

ANONYMOUS_CIPHERS: Final = "ADH:@SECLEVEL=0"
"""What a router without a certificate offers: anonymous finite-field DH suites only."""

CERTIFICATE_VALIDITY: Final = datetime.timedelta(days=365)
"""How long a generated certificate is valid (RouterOS ``/certificate`` defaults to 365 days)."""


class TlsSetupError(Exception):
    """The emulator's TLS cannot be set up (missing package, unreadable or unusable files)."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """A certificate (or a chain, leaf first) and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def from_files(cls, cert_file: str, key_file: str) -> Certificate:
        """Read a certificate (chain) and its key from PEM files; TlsSetupError names the file."""
        pems: list[bytes] = []
        for path in (cert_file, key_file):
            try:
                pems.append(Path(path).read_bytes())
            except OSError as exc:
                raise TlsSetupError(f"cannot read {path}: {exc.strerror or exc}") from None
        certificate = cls(pems[0], pems[1])
        certificate.server_context()  # refuse a mismatched or unreadable pair now
        return certificate

    @property
    def der(self) -> bytes:
        """The (first) certificate in DER form, as a client receives it."""
        return ssl.PEM_cert_to_DER_cert(self.cert_pem.decode("ascii"))

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, as ``AB:CD:...`` (what ``openssl x509 -fingerprint
        -sha256`` prints, and what the gateway's ``tls_fingerprint`` takes)."""
        return format_fingerprint(hashlib.sha256(self.der).hexdigest())

    def server_context(self) -> ssl.SSLContext:
        """A server context presenting this certificate (TLS 1.2 and 1.3, default suites)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with _files(self.cert_pem, self.key_pem) as (cert_file, key_file):
            try:
                context.load_cert_chain(cert_file, key_file)
            except ssl.SSLError as exc:
                raise TlsSetupError(
                    f"unusable certificate or key: {exc.reason or exc.strerror or exc}"
                ) from None
        return context


def format_fingerprint(hex_digest: str) -> str:
    """``abcd...`` as ``AB:CD:...``."""
    upper = hex_digest.upper()
    return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))


def anonymous_context() -> ssl.SSLContext:
    """A server context like api-ssl without a certificate: TLS 1.2, anonymous DH suites only."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ANONYMOUS_CIPHERS)
    with _files(FFDHE2048_PEM.encode("ascii")) as (dh_file,):
        context.load_dh_params(dh_file)
    return context


def make_certificate(
    common_name: str,
    names: Sequence[str] = ("127.0.0.1", "localhost"),
    *,
    issuer: Certificate | None = None,
    ca: bool = False,
) -> Certificate:
    """A new RSA 2048 certificate for ``names`` (IP addresses or DNS names).

    Self-signed unless ``issuer`` (a ``ca=True`` certificate) signs it. Raises TlsSetupError
    when the ``cryptography`` package is not installed.
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise TlsSetupError(
            "generating a certificate needs the 'cryptography' package "
            "(pip install cryptography), or pass --tls-cert and --tls-key"
        ) from None
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    if issuer is None:
        issuer_name, signing_key = subject, key
    else:
        issuer_cert = x509.load_pem_x509_certificate(issuer.cert_pem)
        issuer_key = serialization.load_pem_private_key(issuer.key_pem, password=None)
        if not isinstance(issuer_key, rsa.RSAPrivateKey):
            raise TlsSetupError("the issuer's key must be an RSA key")
        issuer_name, signing_key = issuer_cert.subject, issuer_key
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERTIFICATE_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alt_names), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    cert = builder.sign(signing_key, hashes.SHA256())
    return Certificate(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@contextmanager
def _files(*contents: bytes) -> Iterator[tuple[str, ...]]:
    """Write ``contents`` to private temporary files for the ssl module, which loads only files.

    The directory is created readable by this user only, and removed with the files on exit.
    """
    with tempfile.TemporaryDirectory(prefix="gateway-tls-") as directory:
        paths: list[str] = []
        for index, data in enumerate(contents):
            path = os.path.join(directory, f"{index}.pem")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
                file.write(data)
            paths.append(path)
        yield tuple(paths)
