"""The security settings: key files, proxies, framing, token URL and limits, read or refused
with a message naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, Secret, Settings, load_settings
from tests.support.tokens import SECRET, ec_key, jwk, jwks, private_pem, public_pem, rsa_key

ROUTER = """
[[routers]]
id = "core-1"
host = "192.0.2.1"
username = "monitor"
password = "x"
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(text + ROUTER, encoding="utf-8")
    return load_settings(path, env=env or {})


def error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    message = str(caught.value)
    assert "\n" not in message
    return message.split("config.toml: ", 1)[1]


def test_public_keys_alone_need_no_hs256_secret(tmp_path: Path) -> None:
    """With a public key file and no secret named, jwt mode verifies RS256/ES256 only: the
    default GATEWAY_JWT_SECRET is not required, nor read when it is set."""
    (tmp_path / "signer.pem").write_bytes(public_pem(rsa_key()))
    text = '[auth]\nmode = "jwt"\npublic_key_file = "signer.pem"\n'
    settings = load(tmp_path, text, env={"GATEWAY_JWT_SECRET": SECRET})
    assert settings.auth.jwt_secret is None
    assert settings.auth.public_key_file == str(tmp_path / "signer.pem")


def test_a_secret_named_beside_public_keys_is_read(tmp_path: Path) -> None:
    """HS256 and RS256 together: the secret is read when its source is named."""
    (tmp_path / "jwks.json").write_text(jwks(jwk(ec_key(), "k")))
    text = '[auth]\nmode = "jwt"\njwks_file = "jwks.json"\njwt_secret_env = "S"\n'
    settings = load(tmp_path, text, env={"S": SECRET})
    assert settings.auth.jwt_secret == Secret(SECRET)


def test_jwt_mode_without_any_key_still_asks_for_the_secret(tmp_path: Path) -> None:
    """No key file and no secret: start-up stops naming the secret's variable."""
    message = error(tmp_path, '[auth]\nmode = "jwt"\n')
    assert message.startswith('auth.jwt_secret_env: environment variable "GATEWAY_JWT_SECRET"')


@pytest.mark.parametrize(
    ("key", "content", "expected"),
    [
        ("public_key_file", private_pem(rsa_key()), "holds a private key"),
        ("public_key_file", public_pem(rsa_key(bits=1024)), "1024 bits; RS256 needs 2048"),
        ("public_key_file", b"\xff\xfe", "is not text"),
        ("jwks_file", b'{"keys": []}', "is not usable as a JSON Web Key Set: no usable key"),
        ("jwks_file", public_pem(rsa_key()), "got text that is not JSON"),
    ],
)
def test_unusable_key_files_stop_start_up_naming_the_key(
    tmp_path: Path, key: str, content: bytes, expected: str
) -> None:
    """A key file the gateway could not verify with is refused at start-up, saying why."""
    (tmp_path / "key").write_bytes(content)
    message = error(tmp_path, f'[auth]\nmode = "jwt"\n{key} = "key"\n')
    assert message.startswith(f"auth.{key}: ")
    assert expected in message
    assert "PRIVATE" not in message


def test_a_missing_key_file_is_named_with_its_path(tmp_path: Path) -> None:
    """A key file that is not there names the key and the path it looked at."""
    message = error(tmp_path, '[auth]\nmode = "jwt"\njwks_file = "nowhere.json"\n')
    assert message.startswith(f'auth.jwks_file: cannot read "{tmp_path / "nowhere.json"}"')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[server]\ntrusted_proxies = ["10.0.0.0/33"]\n',
            'server.trusted_proxies[0]: expected an IP network like "10.0.0.0/8"',
        ),
        (
            '[server]\ntrusted_proxies = ["proxy.example"]\n',
            'server.trusted_proxies[0]: expected an IP network like "10.0.0.0/8"',
        ),
        (
            '[server]\nallowed_frame_ancestors = ["https://portal.example/page"]\n',
            "server.allowed_frame_ancestors[0]: expected an origin",
        ),
        ('[server]\nlog_format = "xml"\n', 'server.log_format: expected one of "text", "json"'),
        ('[auth]\ntoken_url = "javascript:alert(1)"\n', "auth.token_url: expected"),
        ('[auth]\ntoken_url = "//evil.example/token"\n', "auth.token_url: expected"),
        ('[auth]\ntoken_url = "https://u:p@portal.example/"\n', "auth.token_url: expected"),
        ("[auth]\nleeway = -1\n", "auth.leeway: expected a non-negative number"),
        ("[auth]\nauth_timeout = 0\n", "auth.auth_timeout: expected a positive number"),
        ("[limits]\nmessage_burst = 0\n", "limits.message_burst: expected a positive integer"),
        (
            "[limits]\nconnections_per_address = -1\n",
            "limits.connections_per_address: expected an integer >= 0",
        ),
        ("[limits]\nmessages_per_second = true\n", "limits.messages_per_second: expected"),
        ("[limits]\nburst = 5\n", "limits.burst: unknown key; expected one of"),
    ],
)
def test_bad_security_settings_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    """Each mistake in the new settings stops start-up with its key and what was expected."""
    assert error(tmp_path, text).startswith(expected)


def test_good_security_settings_are_kept_in_canonical_form(tmp_path: Path) -> None:
    """Proxies are networks (host bits cleared), frame ancestors origins as browsers send them,
    and the token URL may be a path on the gateway's own site."""
    settings = load(
        tmp_path,
        '[server]\ntrusted_proxies = ["10.1.2.3/8", "192.0.2.7", "2001:db8::1/64"]\n'
        'allowed_frame_ancestors = ["HTTPS://Portal.Example.net:443/"]\ntls_proxy = true\n'
        '[auth]\ntoken_url = "/portal/token"\n'
        "[limits]\nconnections_per_address = 0\nhandshakes_per_second = 0\n",
    )
    server = settings.server
    assert server.trusted_proxies == ("10.0.0.0/8", "192.0.2.7/32", "2001:db8::/64")
    assert server.allowed_frame_ancestors == ("https://portal.example.net",)
    assert server.tls_proxy is True
    assert settings.auth.token_url == "/portal/token"
    assert settings.limits.connections_per_address == 0
