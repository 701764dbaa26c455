"""The gateway's configuration: a TOML file, then ``GATEWAY_<SECTION>_<KEY>`` environment overrides.

- ``settings.py``: the contract, every key once, with its default, check and meaning (the
  routers and their ``[poll]`` defaults in ``routers.py``);
- ``secret.py``: the values that never print themselves (secrets, URLs with a password);
- ``schema.py``: how a key is declared there (its kind), and :func:`settings_fields`;
- ``load.py``: the TOML file and the environment into checked, frozen settings;
- ``fields.py``: one table into one settings class, each field checked by its kind;
- ``credentials.py``: the fields read from files or the environment (secrets, keys, TLS files);
- ``table.py``: the checks of one table and their one-line messages.

Import the settings and the loader from here.
"""

from gateway.config.load import ENV_PREFIX, load_settings, settings_from_dict
from gateway.config.routers import LoginMethod, PollSettings, RouterSettings
from gateway.config.secret import Secret
from gateway.config.settings import (
    DEFAULT_JWT_SECRET_ENV,
    AuthMode,
    AuthSettings,
    ClusterSettings,
    LimitSettings,
    LogFormat,
    ServerSettings,
    Settings,
)
from gateway.config.table import ConfigError

__all__ = [
    "DEFAULT_JWT_SECRET_ENV",
    "ENV_PREFIX",
    "AuthMode",
    "AuthSettings",
    "ClusterSettings",
    "ConfigError",
    "LimitSettings",
    "LogFormat",
    "LoginMethod",
    "PollSettings",
    "RouterSettings",
    "Secret",
    "ServerSettings",
    "Settings",
    "load_settings",
    "settings_from_dict",
]
