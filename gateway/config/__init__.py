"""The gateway's configuration: a TOML file, then ``GATEWAY_<SECTION>_<KEY>`` environment overrides.

- ``settings.py``: the contract, every key once, with its default, check and meaning;
- ``schema.py``: how a key is declared there (its kind), and :func:`settings_fields`;
- ``load.py``: the TOML file and the environment into checked, frozen settings;
- ``table.py``: the checks of one table and their one-line messages.

Import the settings and the loader from here.
"""

from gateway.config.load import ENV_PREFIX, load_settings, settings_from_dict
from gateway.config.settings import (
    DEFAULT_JWT_SECRET_ENV,
    AuthMode,
    AuthSettings,
    ClusterSettings,
    LimitSettings,
    LogFormat,
    LoginMethod,
    PollSettings,
    RouterSettings,
    Secret,
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
