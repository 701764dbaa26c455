"""The TOML configuration: defaults, precise errors, secrets kept secret, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import (
    AuthSettings,
    ClusterSettings,
    ConfigError,
    PollSettings,
    RouterSettings,
    Secret,
    ServerSettings,
    Settings,
    load_settings,
    settings_from_dict,
)
from gateway.core.filters import InterfaceFilter
from gateway.emulator.tls import make_certificate

PASSWORD = "s3cr3t-router-pw"
JWT_SECRET = "jwt-signing-key-0123456789abcdefghijkl"
ENV = {"CORE1_PASSWORD": PASSWORD}

ROUTER = """
[[routers]]
id = "core-1"
host = "192.0.2.1"
username = "monitor"
password_env = "CORE1_PASSWORD"
"""

FULL = """
[server]
host = "127.0.0.1"
port = 9090
allowed_origins = ["https://noc.example.com", "http://localhost:3000"]
max_connections = 500
shutdown_grace = 5.0

[auth]
mode = "jwt"
jwt_secret_env = "JWT_KEY"

[poll]
interval = 2
timeout = 1.5
linger = 0
history = 60
backoff_initial = 1.0
backoff_max = 10.0

[cluster]
redis_url = "redis://redis:6379/0"

[[routers]]
id = "core-1"
name = "Core router"
host = "192.0.2.1"
port = 18728
username = "monitor"
password_env = "CORE1_PASSWORD"
tls = false
encoding = "utf-8"

[[routers]]
id = "isp.edge_2"
host = "edge.example.net"
username = "api"
password_file = "edge.secret"
tls = true
encoding = "cp1251"
interval = 5.0
timeout = 4
interfaces = ["ether*", "<pppoe-*>"]
login_method = "token"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), env=ENV if env is None else env)
    message = str(caught.value)
    assert "\n" not in message
    assert "config.toml: " in message
    return message


def test_minimal_file_gets_documented_defaults(tmp_path: Path) -> None:
    """A file with only one router runs with every documented default."""
    settings = load_settings(write(tmp_path, ROUTER), env=ENV)
    assert settings == Settings(
        server=ServerSettings(
            host="0.0.0.0",
            port=8080,
            allowed_origins=(),
            max_connections=20000,
            shutdown_grace=10.0,
        ),
        auth=AuthSettings(mode="none", jwt_secret=None),
        poll=PollSettings(
            interval=1.0,
            timeout=3.0,
            linger=10.0,
            history=300,
            backoff_initial=0.5,
            backoff_max=30.0,
        ),
        cluster=ClusterSettings(redis_url=""),
        routers=(
            RouterSettings(
                id="core-1",
                name="core-1",
                host="192.0.2.1",
                port=8728,
                username="monitor",
                password=Secret(PASSWORD),
                tls=False,
                encoding="utf-8",
                interval=None,
                timeout=None,
                interfaces=(),
                login_method="plain",
                tls_ca_file=None,
                tls_ca_pem=None,
                tls_fingerprint=None,
            ),
        ),
    )
    assert not settings.cluster.enabled


def test_full_file_loads_every_key(tmp_path: Path) -> None:
    """Every documented key is read into the settings."""
    (tmp_path / "edge.secret").write_text("edge-pw\n", encoding="utf-8")
    env = {**ENV, "JWT_KEY": JWT_SECRET}
    settings = load_settings(write(tmp_path, FULL), env=env)
    assert settings.server == ServerSettings(
        "127.0.0.1", 9090, ("https://noc.example.com", "http://localhost:3000"), 500, 5.0
    )
    assert settings.auth.mode == "jwt"
    assert settings.auth.jwt_secret is not None
    assert settings.auth.jwt_secret.reveal() == JWT_SECRET
    assert settings.poll == PollSettings(2.0, 1.5, 0.0, 60, 1.0, 10.0)
    assert settings.cluster.enabled
    core, edge = settings.routers
    assert (core.name, core.port, core.password.reveal()) == ("Core router", 18728, PASSWORD)
    assert (edge.id, edge.name, edge.port, edge.tls) == ("isp.edge_2", "isp.edge_2", 8729, True)
    assert edge.password.reveal() == "edge-pw"
    assert (edge.encoding, edge.login_method) == ("cp1251", "token")
    assert edge.interfaces == ("ether*", "<pppoe-*>")
    assert edge.interface_filter() == InterfaceFilter.of(["<pppoe-*>", "ether*"])
    assert core.interface_filter() == InterfaceFilter.all()


def test_router_inherits_or_overrides_poll_timing(tmp_path: Path) -> None:
    """A router without its own interval and timeout uses [poll]'s; one with its own keeps them."""
    (tmp_path / "edge.secret").write_text("edge-pw", encoding="utf-8")
    settings = load_settings(write(tmp_path, FULL), env={**ENV, "JWT_KEY": JWT_SECRET})
    core, edge = settings.routers
    assert (core.effective_interval(settings.poll), core.effective_timeout(settings.poll)) == (
        2.0,
        1.5,
    )
    assert (edge.effective_interval(settings.poll), edge.effective_timeout(settings.poll)) == (
        5.0,
        4.0,
    )


def test_password_file_relative_to_config_and_newline_stripped(tmp_path: Path) -> None:
    """A password file next to the config is found, and its trailing newline is not the password."""
    (tmp_path / "pw").write_text("from-file\r\n", encoding="utf-8")
    text = ROUTER.replace('password_env = "CORE1_PASSWORD"', 'password_file = "pw"')
    (router,) = load_settings(write(tmp_path, text), env={}).routers
    assert router.password.reveal() == "from-file"


def test_plain_password_for_development(tmp_path: Path) -> None:
    """A password written in the file (development only) is accepted."""
    text = ROUTER.replace('password_env = "CORE1_PASSWORD"', 'password = "dev"')
    (router,) = load_settings(write(tmp_path, text), env={}).routers
    assert router.password.reveal() == "dev"


def test_jwt_secret_from_file(tmp_path: Path) -> None:
    """In jwt mode the signing secret can come from a mounted file."""
    secret_file = tmp_path / "jwt"
    secret_file.write_text(JWT_SECRET + "\n", encoding="utf-8")
    text = f'[auth]\nmode = "jwt"\njwt_secret_file = "{secret_file}"\n' + ROUTER
    secret = load_settings(write(tmp_path, text), env=ENV).auth.jwt_secret
    assert secret == Secret(JWT_SECRET)


def test_jwt_secret_default_variable(tmp_path: Path) -> None:
    """jwt mode without a named source reads GATEWAY_JWT_SECRET."""
    text = '[auth]\nmode = "jwt"\n' + ROUTER
    settings = load_settings(write(tmp_path, text), env={**ENV, "GATEWAY_JWT_SECRET": JWT_SECRET})
    assert settings.auth.jwt_secret == Secret(JWT_SECRET)


def test_none_mode_needs_no_jwt_secret(tmp_path: Path) -> None:
    """Without auth, a missing JWT secret variable is not an error."""
    text = '[auth]\nmode = "none"\njwt_secret_env = "NOT_SET"\n' + ROUTER
    assert load_settings(write(tmp_path, text), env=ENV).auth == AuthSettings("none", None)


TLS_ROUTER = ROUTER + "tls = true\n"
FINGERPRINT = "0123456789abcdef" * 4


def test_tls_alone_authenticates_nothing(tmp_path: Path) -> None:
    """tls = true alone means api-ssl on 8729 with no check of who the router is."""
    (router,) = load_settings(write(tmp_path, TLS_ROUTER), env=ENV).routers
    assert (router.tls, router.port) == (True, 8729)
    assert (router.tls_ca_file, router.tls_ca_pem, router.tls_fingerprint) == (None, None, None)
    assert not router.authenticates_router


def test_tls_ca_file_is_read_at_start_up_relative_to_the_config(tmp_path: Path) -> None:
    """A CA file next to the config is loaded at start-up; the router must then prove itself."""
    certificate = make_certificate("router")
    (tmp_path / "ca.pem").write_bytes(certificate.cert_pem)
    text = TLS_ROUTER + 'tls_ca_file = "ca.pem"\n'
    (router,) = load_settings(write(tmp_path, text), env=ENV).routers
    assert router.tls_ca_file == str(tmp_path / "ca.pem")
    assert router.tls_ca_pem == certificate.cert_pem.decode()
    assert router.authenticates_router
    assert "BEGIN CERTIFICATE" not in repr(router)


@pytest.mark.parametrize(
    "written",
    [
        FINGERPRINT,
        FINGERPRINT.upper(),
        ":".join(FINGERPRINT[i : i + 2] for i in range(0, 64, 2)).upper(),
        f"  {FINGERPRINT}\t",
    ],
    ids=["lower", "upper", "colons", "spaces-around"],
)
def test_tls_fingerprint_is_read_in_any_common_spelling(tmp_path: Path, written: str) -> None:
    """A SHA-256 fingerprint in either case, with or without colons, is the same pin."""
    text = TLS_ROUTER + f'tls_fingerprint = "{written}"\n'
    (router,) = load_settings(write(tmp_path, text), env=ENV).routers
    assert router.tls_fingerprint == FINGERPRINT
    assert router.authenticates_router


def test_unreadable_tls_ca_file_names_the_key_and_path(tmp_path: Path) -> None:
    """A CA file that cannot be read stops start-up, naming the key and the path."""
    message = load_error(tmp_path, TLS_ROUTER + 'tls_ca_file = "missing.pem"\n')
    assert "routers[0].tls_ca_file: cannot read" in message
    assert str(tmp_path / "missing.pem") in message


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a certificate\n",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ],
    ids=["empty", "text", "broken-pem"],
)
def test_tls_ca_file_without_certificates_names_the_key(tmp_path: Path, content: bytes) -> None:
    """A CA file with no loadable certificate stops start-up, naming the key and the path."""
    (tmp_path / "ca.pem").write_bytes(content)
    message = load_error(tmp_path, TLS_ROUTER + 'tls_ca_file = "ca.pem"\n')
    assert "routers[0].tls_ca_file: expected PEM certificates" in message
    assert str(tmp_path / "ca.pem") in message


def test_binary_tls_ca_file_names_the_key(tmp_path: Path) -> None:
    """A DER (binary) file given as tls_ca_file is reported as not PEM."""
    (tmp_path / "ca.der").write_bytes(make_certificate("router").der)
    message = load_error(tmp_path, TLS_ROUTER + 'tls_ca_file = "ca.der"\n')
    assert "routers[0].tls_ca_file:" in message
    assert "is not a PEM file (not text)" in message


ERROR_CASES = [
    pytest.param("[server\nport = 1\n", ["line 1", "column", "invalid TOML"], id="syntax"),
    pytest.param(
        "[severs]\n" + ROUTER,
        ["severs: unknown key", "expected one of auth, cluster, limits, poll, routers, server"],
        id="unknown-section",
    ),
    pytest.param(
        "[server]\nprot = 1\n" + ROUTER,
        ["server.prot: unknown key", "host", "max_connections", 'did you mean "port"'],
        id="unknown-server-key",
    ),
    pytest.param(
        ROUTER + 'pasword = "x"\n',
        ["routers[0].pasword: unknown key", "password_env", "login_method"],
        id="unknown-router-key",
    ),
    pytest.param(
        ROUTER.replace('id = "core-1"', ""),
        ["routers[0].id: missing required key", "expected a non-empty string"],
        id="missing-id",
    ),
    pytest.param(
        ROUTER.replace('host = "192.0.2.1"', ""),
        ["routers[0].host: missing required key"],
        id="missing-host",
    ),
    pytest.param(
        ROUTER.replace('username = "monitor"', ""),
        ["routers[0].username: missing required key"],
        id="missing-username",
    ),
    pytest.param(
        ROUTER.replace('host = "192.0.2.1"', 'host = ""'),
        ['routers[0].host: expected a non-empty string, got ""'],
        id="empty-host",
    ),
    pytest.param(
        '[poll]\ninterval = "fast"\n' + ROUTER,
        ['poll.interval: expected a positive number, got "fast"'],
        id="interval-text",
    ),
    pytest.param(
        "[poll]\ninterval = 0\n" + ROUTER,
        ["poll.interval: expected a positive number, got 0"],
        id="interval-zero",
    ),
    pytest.param(
        "[poll]\ntimeout = -1.5\n" + ROUTER,
        ["poll.timeout: expected a positive number, got -1.5"],
        id="timeout-negative",
    ),
    pytest.param(
        "[poll]\ninterval = true\n" + ROUTER,
        ["poll.interval: expected a positive number, got true"],
        id="interval-bool",
    ),
    pytest.param(
        "[poll]\ntimeout = inf\n" + ROUTER,
        ["poll.timeout: expected a positive number, got inf"],
        id="timeout-inf",
    ),
    pytest.param(
        "[poll]\nhistory = 0\n" + ROUTER,
        ["poll.history: expected an integer from 1 to 1000000, got 0"],
        id="history-zero",
    ),
    pytest.param(
        "[poll]\nhistory = 10.5\n" + ROUTER,
        ["poll.history: expected an integer from 1 to 1000000, got 10.5"],
        id="history-float",
    ),
    pytest.param(
        "[poll]\nlinger = -1\n" + ROUTER,
        ["poll.linger: expected a non-negative number, got -1"],
        id="linger-negative",
    ),
    pytest.param(
        "[poll]\nbackoff_initial = 5\nbackoff_max = 1\n" + ROUTER,
        ["poll.backoff_max: expected a number >= backoff_initial (5.0), got 1.0"],
        id="backoff-max-below-initial",
    ),
    pytest.param(
        ROUTER + "interval = -2\n",
        ["routers[0].interval: expected a positive number, got -2"],
        id="router-interval",
    ),
    pytest.param(
        ROUTER + "port = 0\n",
        ["routers[0].port: expected an integer from 1 to 65535, got 0"],
        id="router-port-zero",
    ),
    pytest.param(
        ROUTER + "port = 70000\n",
        ["routers[0].port: expected an integer from 1 to 65535, got 70000"],
        id="router-port-high",
    ),
    pytest.param(
        ROUTER + "port = true\n",
        ["routers[0].port: expected an integer from 1 to 65535, got true"],
        id="router-port-bool",
    ),
    pytest.param(
        ROUTER + 'port = "8728"\n',
        ['routers[0].port: expected an integer from 1 to 65535, got "8728"'],
        id="router-port-text",
    ),
    pytest.param(
        "[server]\nport = 65536\n" + ROUTER,
        ["server.port: expected an integer from 0 to 65535, got 65536"],
        id="server-port",
    ),
    pytest.param(
        "[server]\nmax_connections = 0\n" + ROUTER,
        ["server.max_connections: expected a positive integer, got 0"],
        id="max-connections",
    ),
    pytest.param(
        '[server]\nallowed_origins = "https://a.example"\n' + ROUTER,
        ["server.allowed_origins: expected an array of non-empty strings, got"],
        id="origins-not-array",
    ),
    pytest.param(
        '[server]\nallowed_origins = ["noc.example.com"]\n' + ROUTER,
        ["server.allowed_origins[0]: expected an origin like", '"noc.example.com"'],
        id="origin-without-scheme",
    ),
    pytest.param(
        '[server]\nallowed_origins = ["wss://noc.example.com"]\n' + ROUTER,
        [
            "server.allowed_origins[0]: expected an origin like",
            "(the address of the page, https://..., not of the websocket)",
        ],
        id="origin-websocket-url",
    ),
    pytest.param(
        '[server]\nallowed_origins = ["null"]\n' + ROUTER,
        ["server.allowed_origins[0]: expected an origin like", "opaque origin"],
        id="origin-null",
    ),
    pytest.param(
        '[server]\nallowed_origins = ["https://noc.example.com/dashboard"]\n' + ROUTER,
        ["server.allowed_origins[0]: expected an origin like", "no path"],
        id="origin-with-path",
    ),
    pytest.param(
        '[server]\nallowed_origins = ["https://noc.example.com:99999"]\n' + ROUTER,
        ["server.allowed_origins[0]: expected an origin like", "port from 1 to 65535"],
        id="origin-bad-port",
    ),
    pytest.param(
        ROUTER + 'tls = "yes"\n',
        ['routers[0].tls: expected true or false, got "yes"'],
        id="tls-text",
    ),
    pytest.param(
        TLS_ROUTER + 'tls_fingerprint = "AB:CD:EF"\n',
        [
            "routers[0].tls_fingerprint: expected the certificate's SHA-256 fingerprint, "
            '64 hex digits with or without colons, got "AB:CD:EF"'
        ],
        id="fingerprint-short",
    ),
    pytest.param(
        TLS_ROUTER + f'tls_fingerprint = "{"zz" * 32}"\n',
        ["routers[0].tls_fingerprint: expected the certificate's SHA-256 fingerprint"],
        id="fingerprint-not-hex",
    ),
    pytest.param(
        TLS_ROUTER + f'tls_fingerprint = "{"ab" * 20}"\n',
        ["routers[0].tls_fingerprint: expected", "the length of a SHA-1 fingerprint"],
        id="fingerprint-sha1",
    ),
    pytest.param(
        TLS_ROUTER + "tls_fingerprint = 42\n",
        ["routers[0].tls_fingerprint: expected a non-empty string, got 42"],
        id="fingerprint-not-text",
    ),
    pytest.param(
        ROUTER + f'tls_fingerprint = "{FINGERPRINT}"\n',
        ["routers[0].tls_fingerprint: needs tls = true"],
        id="fingerprint-without-tls",
    ),
    pytest.param(
        ROUTER + 'tls_ca_file = "ca.pem"\n',
        ["routers[0].tls_ca_file: needs tls = true"],
        id="ca-file-without-tls",
    ),
    pytest.param(
        TLS_ROUTER + 'tls_ca_file = ""\n',
        ['routers[0].tls_ca_file: expected a non-empty string, got ""'],
        id="ca-file-empty-name",
    ),
    pytest.param(
        ROUTER + 'interfaces = "ether1"\n',
        [
            'routers[0].interfaces: expected an array of name globs and {exact = "name"} '
            'tables, got "ether1"'
        ],
        id="interfaces-not-array",
    ),
    pytest.param(
        ROUTER + 'interfaces = ["ether1", 2]\n',
        [
            "routers[0].interfaces[1]: expected a name glob (a non-empty string) or "
            '{exact = "name"}, got 2'
        ],
        id="interface-glob-not-text",
    ),
    pytest.param(
        ROUTER + 'encoding = "utf-9"\n',
        ["routers[0].encoding: expected a text encoding that reads ASCII as ASCII", 'got "utf-9"'],
        id="encoding-unknown",
    ),
    pytest.param(
        ROUTER + 'encoding = "base64"\n',
        ["routers[0].encoding: expected a text encoding that reads ASCII as ASCII", 'got "base64"'],
        id="encoding-not-text",
    ),
    pytest.param(
        ROUTER + 'login_method = "md5"\n',
        ['routers[0].login_method: expected one of "plain", "token", got "md5"'],
        id="login-method",
    ),
    pytest.param(
        ROUTER.replace('id = "core-1"', 'id = "core 1!"'),
        ["routers[0].id: expected 1 to 64 letters", '"core 1!"'],
        id="id-characters",
    ),
    pytest.param(
        ROUTER.replace('id = "core-1"', 'id = "-core"'),
        ["routers[0].id: expected", "starting with a letter or digit", '"-core"'],
        id="id-leading-dash",
    ),
    pytest.param(
        ROUTER.replace('id = "core-1"', f'id = "{"a" * 65}"'),
        ["routers[0].id: expected 1 to 64"],
        id="id-too-long",
    ),
    pytest.param(
        ROUTER + ROUTER.replace('host = "192.0.2.1"', 'host = "192.0.2.2"'),
        ['routers[1].id: expected a unique router id, got "core-1"', "routers[0]"],
        id="duplicate-id",
    ),
    pytest.param(
        "[server]\nport = 8080\n",
        ["routers: expected at least one [[routers]] table, got none"],
        id="no-routers",
    ),
    pytest.param(
        '[routers]\nid = "core-1"\n',
        ["routers: expected an array of tables ([[routers]]), got a table"],
        id="routers-as-table",
    ),
    pytest.param(
        "server = 5\n" + ROUTER,
        ["server: expected a table, got 5"],
        id="section-not-table",
    ),
    pytest.param(
        '[auth]\nmode = "oauth"\n' + ROUTER,
        ['auth.mode: expected one of "none", "jwt", got "oauth"'],
        id="auth-mode",
    ),
    pytest.param(
        ROUTER.replace('password_env = "CORE1_PASSWORD"', ""),
        [
            "routers[0]: expected exactly one of password_env, password_file or password",
            "got none",
        ],
        id="no-password-source",
    ),
    pytest.param(
        ROUTER + 'password = "also"\n',
        ["routers[0]: expected exactly one of", "got password_env and password"],
        id="two-password-sources",
    ),
    pytest.param(
        '[auth]\nmode = "jwt"\njwt_secret_env = "A"\njwt_secret_file = "b"\n' + ROUTER,
        ["auth: expected one of jwt_secret_env or jwt_secret_file, got both"],
        id="two-jwt-sources",
    ),
    pytest.param(
        '[auth]\nmode = "jwt"\njwt_secret_env = "MISSING_JWT"\n' + ROUTER,
        ['auth.jwt_secret_env: environment variable "MISSING_JWT" is not set'],
        id="jwt-env-missing",
    ),
    pytest.param(
        '[cluster]\nredis_url = "http://redis:6379"\n' + ROUTER,
        ["cluster.redis_url: expected", "redis://", '"http://redis:6379"'],
        id="redis-scheme",
    ),
    pytest.param(
        '[cluster]\nkey_prefix = "{gw}"\n' + ROUTER,
        ["cluster.key_prefix: expected 1 to 64 letters, digits", 'got "{gw}"'],
        id="key-prefix-braces",
    ),
    pytest.param(
        '[cluster]\nredis_url = "redis://:pw@redis:6379/cache"\n' + ROUTER,
        ["cluster.redis_url: expected a database number as the URL's path", 'got "/cache"'],
        id="redis-database-not-a-number",
    ),
    pytest.param(
        "[poll]\ninterval = 0.0005\n" + ROUTER,
        ["poll.interval: expected a number >= 0.001 (at most one poll a millisecond", "0.0005"],
        id="interval-under-a-millisecond",
    ),
    pytest.param(
        ROUTER + "interval = 0.0002\n",
        ["routers[0].interval: expected a number >= 0.001", "got 0.0002"],
        id="router-interval-under-a-millisecond",
    ),
    pytest.param(
        ROUTER + 'sources = ["interfaces", "queue"]\n',
        [
            'routers[0].sources[1]: expected an array of "interfaces", "queues", "hotspot"',
            'got "queue"',
        ],
        id="unknown-source",
    ),
    pytest.param(
        ROUTER + "sources = []\n",
        [
            "routers[0].sources: expected an array of",
            "(at least one, each once), got an empty array",
        ],
        id="no-source",
    ),
    pytest.param(
        ROUTER + 'sources = ["queues", "queues"]\n',
        ["routers[0].sources[1]:", 'got "queues" twice'],
        id="source-twice",
    ),
    pytest.param(
        ROUTER + 'queues = ["a****b*"]\n',
        ['routers[0].queues: a glob holds at most 4 "*"'],
        id="queue-glob-too-costly",
    ),
    pytest.param(
        "[poll]\nsessions_interval = 0\n" + ROUTER,
        ["poll.sessions_interval: expected a positive number, got 0"],
        id="sessions-interval-zero",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERROR_CASES)
def test_config_errors_name_file_key_and_expectation(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    """Each mistake stops start-up with one line naming the file, the key and what was expected."""
    message = load_error(tmp_path, text)
    for part in expected:
        assert part in message
    assert PASSWORD not in message


def test_error_message_format_matches_documentation(tmp_path: Path) -> None:
    """The message reads "<file>: <key>: expected ..., got ..."."""
    path = write(tmp_path, '[poll]\ninterval = "fast"\n' + ROUTER)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=ENV)
    assert str(caught.value) == f'{path}: poll.interval: expected a positive number, got "fast"'


def test_missing_password_variable_names_router_and_variable(tmp_path: Path) -> None:
    """An unset password variable is reported with the router and the variable name."""
    message = load_error(tmp_path, ROUTER, env={})
    assert "routers[0].password_env" in message
    assert '"CORE1_PASSWORD"' in message
    assert '"core-1"' in message


def test_unreadable_password_file_names_the_path(tmp_path: Path) -> None:
    """A password file that cannot be read is reported with its path."""
    text = ROUTER.replace('password_env = "CORE1_PASSWORD"', 'password_file = "nope.secret"')
    message = load_error(tmp_path, text)
    assert "routers[0].password_file: cannot read" in message
    assert str(tmp_path / "nope.secret") in message


def test_empty_jwt_secret_is_refused(tmp_path: Path) -> None:
    """An empty signing key, which would let anyone mint tokens, stops start-up."""
    text = '[auth]\nmode = "jwt"\n' + ROUTER
    message = load_error(tmp_path, text, env={**ENV, "GATEWAY_JWT_SECRET": ""})
    assert "auth.jwt_secret_env: expected a non-empty JWT secret" in message


@pytest.mark.parametrize(
    ("secret", "size"), [("CHANGE-ME", 9), ("x" * 31, 31), ("\u00e9" * 15 + "x", 31)]
)
def test_short_jwt_secret_is_refused(tmp_path: Path, secret: str, size: int) -> None:
    """An HS256 secret under 32 bytes (the shipped CHANGE-ME placeholder, too) stops start-up
    with its key, its length in bytes and how to make one, never its value."""
    secret_file = tmp_path / "jwt-secret"
    secret_file.write_text(secret + "\n", encoding="utf-8")
    text = f'[auth]\nmode = "jwt"\njwt_secret_file = "{secret_file}"\n' + ROUTER
    message = load_error(tmp_path, text)
    assert message.endswith(
        f"auth.jwt_secret_file: expected a JWT secret of at least 32 bytes (HS256, RFC 7518 "
        f"section 3.2), got {size} bytes; make one with: head -c 48 /dev/urandom | base64"
    )
    assert secret not in message
    env = {**ENV, "GATEWAY_JWT_SECRET": secret}
    message = load_error(tmp_path, '[auth]\nmode = "jwt"\n' + ROUTER, env=env)
    assert "auth.jwt_secret_env: expected a JWT secret of at least 32 bytes" in message
    # 32 bytes are enough.
    secret_file.write_text("y" * 32, encoding="utf-8")
    settings = load_settings(write(tmp_path, text), env=ENV)
    assert settings.auth.jwt_secret == Secret("y" * 32)


def test_unreadable_config_file(tmp_path: Path) -> None:
    """A missing configuration file is reported by name."""
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read the file"):
        load_settings(path, env=ENV)


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    """Printing the settings shows no password, no JWT secret and no Redis password."""
    (tmp_path / "edge.secret").write_text("edge-file-pw\n", encoding="utf-8")
    text = FULL.replace("redis://redis:6379/0", "redis://:redis-pw@redis:6379/0")
    settings = load_settings(write(tmp_path, text), env={**ENV, "JWT_KEY": JWT_SECRET})
    shown = repr(settings) + str(settings)
    for secret in (PASSWORD, JWT_SECRET, "edge-file-pw", "redis-pw"):
        assert secret not in shown
    assert "Secret('***')" in shown
    assert f"{settings.routers[0].password}" == "Secret('***')"
    assert settings.cluster.redis_url == "redis://:redis-pw@redis:6379/0"


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    """Even a password of the wrong type or a bad Redis URL is not echoed in the error."""
    text = ROUTER.replace('password_env = "CORE1_PASSWORD"', "password = 987654321")
    message = load_error(tmp_path, text)
    assert message.endswith("routers[0].password: expected a string, got an integer")
    assert "987654321" not in message
    redis = '[cluster]\nredis_url = "http://:redis-pw@redis"\n' + ROUTER
    assert "redis-pw" not in load_error(tmp_path, redis)


def test_later_error_does_not_leak_resolved_secrets(tmp_path: Path) -> None:
    """A config error after secrets were read still contains none of them."""
    (tmp_path / "edge.secret").write_text("edge-file-pw", encoding="utf-8")
    text = FULL + '\n[[routers]]\nid = "bad id"\nhost = "h"\nusername = "u"\npassword = "p"\n'
    message = load_error(tmp_path, text, env={**ENV, "JWT_KEY": JWT_SECRET})
    assert "routers[2].id" in message
    for secret in (PASSWORD, JWT_SECRET, "edge-file-pw"):
        assert secret not in message


def test_environment_overrides_file_values(tmp_path: Path) -> None:
    """GATEWAY_<SECTION>_<KEY> variables win over the file, parsed to the key's type."""
    env = {
        **ENV,
        "GATEWAY_SERVER_PORT": "9000",
        "GATEWAY_SERVER_HOST": "::",
        "GATEWAY_SERVER_ALLOWED_ORIGINS": "https://a.example, https://B.example:8443,",
        "GATEWAY_POLL_INTERVAL": "0.5",
        "GATEWAY_POLL_HISTORY": "120",
        "GATEWAY_CLUSTER_REDIS_URL": "redis://redis:6379/1",
        "GATEWAY_AUTH_MODE": "jwt",
        "GATEWAY_JWT_SECRET": JWT_SECRET,
    }
    settings = load_settings(write(tmp_path, "[server]\nport = 8081\n" + ROUTER), env=env)
    assert (settings.server.host, settings.server.port) == ("::", 9000)
    assert settings.server.allowed_origins == ("https://a.example", "https://b.example:8443")
    assert (settings.poll.interval, settings.poll.history) == (0.5, 120)
    assert settings.routers[0].effective_interval(settings.poll) == 0.5
    assert settings.cluster.redis_url == "redis://redis:6379/1"
    assert settings.auth == AuthSettings("jwt", Secret(JWT_SECRET))


def test_allowed_origins_load_in_the_form_browsers_send(tmp_path: Path) -> None:
    """Origins load as browsers send them: lower case, default port and trailing slash gone."""
    origins = [
        "https://noc.example.net:443",
        "HTTP://Dash.Example.NET:80/",
        "http://localhost:3000",
        "https://noc.example.net:8443",
        "http://[0:0::1]:80",
        "https://bücher.example.",
    ]
    text = f"[server]\nallowed_origins = {origins!r}\n".replace("'", '"') + ROUTER
    settings = load_settings(write(tmp_path, text), env=ENV)
    assert settings.server.allowed_origins == (
        "https://noc.example.net",
        "http://dash.example.net",
        "http://localhost:3000",
        "https://noc.example.net:8443",
        "http://[::1]",
        "https://xn--bcher-kva.example",
    )


def test_environment_secret_source_replaces_file_source(tmp_path: Path) -> None:
    """Pointing GATEWAY_AUTH_JWT_SECRET_FILE at a mounted secret replaces the file's variable."""
    secret_file = tmp_path / "mounted"
    secret_file.write_text(JWT_SECRET, encoding="utf-8")
    text = '[auth]\nmode = "jwt"\njwt_secret_env = "UNSET"\n' + ROUTER
    env = {**ENV, "GATEWAY_AUTH_JWT_SECRET_FILE": str(secret_file)}
    assert load_settings(write(tmp_path, text), env=env).auth.jwt_secret == Secret(JWT_SECRET)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("GATEWAY_POLL_INTERVAL", "fast", 'expected a positive number, got "fast"'),
        ("GATEWAY_POLL_TIMEOUT", "0", "expected a positive number, got 0.0"),
        ("GATEWAY_SERVER_PORT", "http", 'expected an integer from 0 to 65535, got "http"'),
        ("GATEWAY_SERVER_PORT", "99999", "expected an integer from 0 to 65535, got 99999"),
        ("GATEWAY_POLL_HISTORY", "1.5", 'expected an integer from 1 to 1000000, got "1.5"'),
        ("GATEWAY_AUTH_MODE", "JWT", 'expected one of "none", "jwt", got "JWT"'),
        ("GATEWAY_SERVER_ALLOWED_ORIGINS", "https://ok.example,nope", "expected an origin like"),
    ],
)
def test_bad_environment_values_name_the_variable(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    """A bad override is reported under the variable's name with what was expected."""
    message = load_error(tmp_path, ROUTER, env={**ENV, variable: value})
    assert f"config.toml: {variable} (" in message
    assert expected in message


def test_unknown_environment_variables_are_refused_with_a_suggestion(tmp_path: Path) -> None:
    """A mistyped GATEWAY_<SECTION>_* variable stops start-up as a mistyped key does, naming the
    variable and the closest one, instead of being ignored."""
    message = load_error(tmp_path, ROUTER, env={**ENV, "GATEWAY_SERVER_PROT": "9999"})
    assert message.endswith(
        "config.toml: GATEWAY_SERVER_PROT: unknown environment variable; expected one of "
        "GATEWAY_SERVER_ALLOWED_FRAME_ANCESTORS, GATEWAY_SERVER_ALLOWED_ORIGINS, "
        "GATEWAY_SERVER_DRAIN_HOLD, GATEWAY_SERVER_HEARTBEAT, GATEWAY_SERVER_HOST, "
        "GATEWAY_SERVER_LOG_FORMAT, GATEWAY_SERVER_MAX_CONNECTIONS, GATEWAY_SERVER_PORT, "
        "GATEWAY_SERVER_SHUTDOWN_GRACE, GATEWAY_SERVER_SLOW_CONSUMER_BYTES, "
        "GATEWAY_SERVER_SLOW_CONSUMER_SECONDS, GATEWAY_SERVER_TLS_PROXY, "
        'GATEWAY_SERVER_TRUSTED_PROXIES (did you mean "GATEWAY_SERVER_PORT"?)'
    )
    for variable, closest in [
        ("GATEWAY_POLL_INTERVALL", "GATEWAY_POLL_INTERVAL"),
        ("GATEWAY_AUTH_MOD", "GATEWAY_AUTH_MODE"),
        ("GATEWAY_CLUSTER_REDIS", "GATEWAY_CLUSTER_REDIS_URL"),
    ]:
        message = load_error(tmp_path, ROUTER, env={**ENV, variable: "1"})
        assert f"config.toml: {variable}: unknown environment variable; " in message
        assert message.endswith(f'(did you mean "{closest}"?)')
    message = load_error(tmp_path, ROUTER, env={**ENV, "GATEWAY_ROUTERS_PORT": "1"})
    assert message.endswith(
        "config.toml: GATEWAY_ROUTERS_PORT: unknown environment variable; [[routers]] tables "
        "have no environment overrides: set their keys in the file"
    )


def test_variables_the_configuration_names_are_not_refused(tmp_path: Path) -> None:
    """Secret sources named in the file or by an override may carry any name, and GATEWAY_*
    names outside the sections (GATEWAY_CONFIG, GATEWAY_JWT_SECRET, ...) are left alone."""
    text = '[auth]\nmode = "jwt"\njwt_secret_env = "GATEWAY_AUTH_SECRET"\n' + ROUTER.replace(
        '"CORE1_PASSWORD"', '"GATEWAY_ROUTERS_CORE1_PASSWORD"'
    )
    env = {
        "GATEWAY_AUTH_SECRET": JWT_SECRET,
        "GATEWAY_ROUTERS_CORE1_PASSWORD": PASSWORD,
        "GATEWAY_CONFIG": "/etc/gateway/gateway.toml",
        "GATEWAY_LISTEN_FILE": "/tmp/gateway.listen",
        "GATEWAY_JWT_SECRET": "unused",
        "GATEWAY_TEST_TIME_UNIT": "3",
    }
    settings = load_settings(write(tmp_path, text), env=env)
    assert settings.auth.jwt_secret == Secret(JWT_SECRET)
    assert settings.routers[0].password == Secret(PASSWORD)
    # The same through an override of the source's name.
    env = {
        **env,
        "GATEWAY_AUTH_JWT_SECRET_ENV": "GATEWAY_AUTH_OTHER",
        "GATEWAY_AUTH_OTHER": "o" * 32,
    }
    settings = load_settings(write(tmp_path, text), env=env)
    assert settings.auth.jwt_secret == Secret("o" * 32)


def test_settings_from_dict_without_a_file() -> None:
    """Settings can be built from plain data, named by a source label in errors."""
    data: dict[str, object] = {
        "poll": {"interval": 0.25},
        "routers": [{"id": "lab", "host": "127.0.0.1", "username": "admin", "password": "admin"}],
    }
    settings = settings_from_dict(data, source="demo", env={})
    assert settings.poll.interval == 0.25
    assert settings.routers[0].password.reveal() == "admin"
    assert data["poll"] == {"interval": 0.25}
    with pytest.raises(ConfigError, match=r"^demo: routers: expected at least one"):
        settings_from_dict({}, source="demo", env={})


def test_environment_override_does_not_modify_input() -> None:
    """Applying environment overrides leaves the caller's data untouched."""
    poll: dict[str, object] = {"interval": 2.0}
    data: dict[str, object] = {
        "poll": poll,
        "routers": [{"id": "lab", "host": "h", "username": "u", "password": ""}],
    }
    settings = settings_from_dict(data, source="demo", env={"GATEWAY_POLL_INTERVAL": "3"})
    assert settings.poll.interval == 3.0
    assert poll == {"interval": 2.0}


def test_secret_compares_by_value_and_hides_it() -> None:
    """Two secrets with the same value are equal; neither prints its value."""
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert hash(Secret("a")) == hash(Secret("a"))
    assert repr(Secret("a")) == str(Secret("a")) == "Secret('***')"
    assert Secret("a").reveal() == "a"


NON_ASCII = "Kennwört-7"


@pytest.mark.parametrize(
    ("source", "env"),
    [
        pytest.param('password_env = "CORE1_PASSWORD"', {"CORE1_PASSWORD": NON_ASCII}, id="env"),
        pytest.param(f'password = "{NON_ASCII}"', {}, id="inline"),
    ],
)
def test_password_the_encoding_cannot_carry_stops_start_up(
    tmp_path: Path, source: str, env: dict[str, str]
) -> None:
    """A password that the router's encoding cannot carry could never log in: start-up stops
    with the router, the key and the encoding named, and no piece of the password."""
    text = ROUTER.replace('password_env = "CORE1_PASSWORD"', f'{source}\nencoding = "ascii"')
    message = load_error(tmp_path, text, env=env)
    key = source.split(" ")[0]
    assert f'routers[0].{key}: expected a password that encoding "ascii" can carry' in message
    assert '"core-1"' in message
    pieces = {NON_ASCII[i : i + 4] for i in range(len(NON_ASCII) - 3)}
    for piece in (*pieces, "ö", "\\xf6", "xf6", "u00f6", "position"):
        assert piece not in message
    # The same password is fine where the encoding carries it.
    fine = text.replace('encoding = "ascii"', 'encoding = "latin-1"')
    assert load_settings(write(tmp_path, fine), env=env).routers[0].password == Secret(NON_ASCII)


# -- a secret pasted where its source belongs --------------------------------------------------

PASTED = "Hq7!zX-pW2#v"
"""A password pasted into a key that names where the password is (no four characters of it
occur in any message)."""


def _pasted_fragments(secret: str) -> set[str]:
    return {secret[i : i + 4] for i in range(len(secret) - 3)}


@pytest.mark.parametrize("pasted", [PASTED, "Hunter2-Secret!"])
@pytest.mark.parametrize(
    ("table", "key", "shape"),
    [
        ("router", "password_env", "not an environment variable name"),
        ("router", "password_file", "does not look like a path"),
        ("auth", "jwt_secret_env", "not an environment variable name"),
        ("auth", "jwt_secret_file", "does not look like a path"),
    ],
)
def test_a_secret_pasted_into_a_source_key_is_not_shown(
    tmp_path: Path, table: str, key: str, shape: str, pasted: str
) -> None:
    """A password pasted into password_env (or any key naming where a secret is) stops start-up
    with the key named and the value not shown, saying why."""
    if table == "router":
        text = ROUTER.replace('password_env = "CORE1_PASSWORD"', f'{key} = "{pasted}"')
        where = "routers[0]"
    else:
        text = f'[auth]\nmode = "jwt"\n{key} = "{pasted}"\n' + ROUTER
        where = "auth"
    message = load_error(tmp_path, text)
    assert f"{where}.{key}: " in message
    assert shape in message
    assert "not shown" in message
    assert "may be a secret" in message
    assert pasted not in message
    if pasted == PASTED:
        for fragment in _pasted_fragments(pasted):
            assert fragment not in message


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("password_env", "CORE9_PASSWORD", '"CORE9_PASSWORD" is not set'),
        ("password_file", "secrets/core-9", "secrets/core-9"),
        ("password_file", "core-9.pass", "core-9.pass"),
    ],
)
def test_a_plausible_source_is_named_in_the_error(
    tmp_path: Path, key: str, value: str, shown: str
) -> None:
    """A variable name or a file path that looks like one is shown, so the typo can be found."""
    text = ROUTER.replace('password_env = "CORE1_PASSWORD"', f'{key} = "{value}"')
    assert shown in load_error(tmp_path, text)


@pytest.mark.parametrize("key", ["password_env", "password_file"])
@pytest.mark.parametrize("value", ["12345678", "[1, 2]", '""', "true"])
def test_a_source_key_of_the_wrong_type_is_not_shown(tmp_path: Path, key: str, value: str) -> None:
    """A secret source of the wrong type is described by its type only."""
    text = ROUTER.replace('password_env = "CORE1_PASSWORD"', f"{key} = {value}")
    message = load_error(tmp_path, text)
    assert f"routers[0].{key}: expected a non-empty string, got " in message
    assert "12345678" not in message


def test_a_secret_source_from_the_environment_is_not_shown_either(tmp_path: Path) -> None:
    """GATEWAY_AUTH_JWT_SECRET_ENV holding the secret itself names the variable, not the value."""
    text = '[auth]\nmode = "jwt"\n' + ROUTER
    message = load_error(tmp_path, text, env={**ENV, "GATEWAY_AUTH_JWT_SECRET_ENV": PASTED})
    assert "GATEWAY_AUTH_JWT_SECRET_ENV (auth.jwt_secret_env)" in message
    for fragment in _pasted_fragments(PASTED):
        assert fragment not in message


# -- values that made the loader itself fail ---------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://u:Redis[Pass99@h/",
        "redis://u:Redis]Pass99@[h/",
        "redis://u:RedisPass99@h:port/",
        "redis://u:RedisPass99@h:99999/",
    ],
)
def test_a_redis_url_that_does_not_parse_is_one_line_without_its_password(
    tmp_path: Path, url: str
) -> None:
    """A Redis URL that urllib cannot split stops start-up with one line naming the key, the
    URL and its password not shown, and how to write special characters."""
    message = load_error(tmp_path, f'[cluster]\nredis_url = "{url}"\n' + ROUTER)
    assert "cluster.redis_url: " in message
    assert "does not parse" in message
    assert "%5B" in message
    assert "Pass99" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[poll]\nhistory = " + "9" * 5000 + "\n", "an integer too long to read"),
        ("[poll]\ninterval = " + "9" * 400 + "\n", "poll.interval: expected a positive number"),
        ("[poll]\nhistory = " + "9" * 400 + "\n", "poll.history: expected an integer from 1 to"),
        ('[auth]\nmode = "jwt"\njwt_secret_file = "a\\u0000b"\n', "auth.jwt_secret_file"),
    ],
)
def test_extreme_values_are_one_line_errors(tmp_path: Path, text: str, expected: str) -> None:
    """Numbers too long for int() or float(), and a NUL in a path, are config errors."""
    message = load_error(tmp_path, text + ROUTER)
    assert expected in message
    assert len(message) < 400


def test_an_extreme_integer_in_the_environment_is_a_config_error(tmp_path: Path) -> None:
    """GATEWAY_POLL_HISTORY with more digits than int() reads is reported, not raised."""
    message = load_error(tmp_path, ROUTER, env={**ENV, "GATEWAY_POLL_HISTORY": "9" * 5000})
    assert "GATEWAY_POLL_HISTORY (poll.history): expected an integer from 1 to" in message


# -- router encodings and interfaces -----------------------------------------------------------


@pytest.mark.parametrize(
    "encoding", ["utf-8-sig", "utf-7", "unicode_escape", "utf-16", "cp037", "base64", "x\\u0000"]
)
def test_an_encoding_that_does_not_read_ascii_as_ascii_stops_start_up(
    tmp_path: Path, encoding: str
) -> None:
    """Encodings that merge names or cannot read API words are refused, naming the key."""
    message = load_error(tmp_path, ROUTER + f'encoding = "{encoding}"\n')
    assert "routers[0].encoding: expected a text encoding that reads ASCII as ASCII" in message


def test_router_interfaces_take_exact_names_and_globs(tmp_path: Path) -> None:
    """interfaces = [{exact = "ether1 [WAN]"}, "<pppoe-*>"] publishes that name literally and
    every PPPoE customer; the bracketed name as a glob would publish "ether1 W" instead."""
    text = ROUTER + 'interfaces = [{exact = "ether1 [WAN]"}, "<pppoe-*>"]\n'
    router = load_settings(write(tmp_path, text), env=ENV).routers[0]
    published = router.interface_filter()
    for name in ("ether1 [WAN]", "<pppoe-alice>"):
        assert published.matches(name)
    for name in ("ether1 W", "ether1", "sfp1"):
        assert not published.matches(name)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (
            '[{exact = ""}]',
            "interfaces[0]: expected a name glob (a non-empty string) or "
            '{exact = "name"}, got {exact = ""}',
        ),
        (
            '[{name = "x"}]',
            "interfaces[0]: expected a name glob (a non-empty string) or "
            '{exact = "name"}, got a table with keys "name"',
        ),
        ('["*a*b*c*d*e"]', 'interfaces: a glob holds at most 4 "*", got 5'),
        ('["' + "x" * 300 + '*"]', "interfaces: the globs of one list hold at most 256 characters"),
    ],
)
def test_bad_router_interfaces_name_the_entry_or_the_limit(
    tmp_path: Path, entries: str, expected: str
) -> None:
    """A router's interfaces list obeys the protocol's form and limits, with the key named."""
    assert f"routers[0].{expected}" in load_error(tmp_path, ROUTER + f"interfaces = {entries}\n")


def test_sources_default_to_all_three_and_filters_to_everything(tmp_path: Path) -> None:
    """A router serves interfaces, queues and hotspot users unless told otherwise, each whole;
    its queues and hotspot settings narrow those sources as interfaces does its own."""
    settings = load_settings(write(tmp_path, ROUTER), env=ENV)
    [router] = settings.routers
    assert router.sources == ("interfaces", "queues", "hotspot")
    assert router.name_filter("queues") == InterfaceFilter.all()
    assert settings.poll.sessions_interval == 30.0
    text = ROUTER + 'sources = ["queues", "interfaces"]\nqueues = [{exact = "cust [1]"}]\n'
    [narrow] = load_settings(write(tmp_path, text), env=ENV).routers
    assert narrow.sources == ("interfaces", "queues")
    assert narrow.name_filter("queues").matches("cust [1]")
    assert not narrow.name_filter("queues").matches("cust 1")
    assert narrow.name_filter("hotspot") == InterfaceFilter.all()
