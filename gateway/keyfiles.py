"""Key rotation: the public key and JWKS files are re-read when they change, off the event loop.

The configuration reads and checks both files at start-up (``gateway.config``), so the gateway
never starts with a key it cannot use. While it runs, ``KeyFiles.watch`` looks at each file every
``KEY_CHECK_SECONDS`` (one ``stat`` in a worker thread) and re-reads it when its size, modification
time or inode changed (an editor's rename, a Kubernetes Secret's symlink swap). A good new file
replaces that file's keys at once; a bad one (half written, a wrong key) keeps the keys in use
and is logged once, at WARNING, until the file changes again. The HS256 secret is not watched:
a new secret means a restart (a rolling one keeps viewers served).

Operators rotate by publishing the new key next to the old one (a JWKS with both ``kid``s),
waiting ``KEY_CHECK_SECONDS``, then signing with the new key, and later removing the old one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.config import AuthSettings
from gateway.faults import UnexpectedErrors
from gateway.signing_keys import (
    MAX_KEY_FILE_BYTES,
    KeyFileError,
    KeySet,
    VerificationKey,
    hmac_key,
    keys_from_jwks,
    public_key_from_pem,
)

__all__ = ["KEY_CHECK_SECONDS", "KeyFiles"]

logger = logging.getLogger(__name__)

KEY_CHECK_SECONDS: Final = 2.0
"""How often each key file is looked at (one ``stat``): how long a rotation takes to show."""

# What identifies one version of a file: (device, inode, size, modification time in ns).
Stamp = tuple[int, int, int, int]


@dataclass(slots=True)
class _Watched:
    """One key file: where it is, how to read it, what it held last, and what was logged."""

    setting: str
    path: Path
    parse: Callable[[bytes], tuple[VerificationKey, ...]]
    keys: tuple[VerificationKey, ...]
    # The version the keys came from (None: not looked at yet, so read it on the first look).
    stamp: Stamp | None = None
    # The version last refused (logged once), so a bad file is not reported every look.
    refused: Stamp | None = None
    # Whether the file is missing or unreadable now (logged once until it is back).
    missing: bool = False


def _stamp(path: Path) -> Stamp:
    info = path.stat()
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _read(path: Path) -> tuple[Stamp, bytes]:
    """The file's version and content (at most MAX_KEY_FILE_BYTES + 1 bytes: parse refuses more)."""
    stamp = _stamp(path)
    with path.open("rb") as file:
        return stamp, file.read(MAX_KEY_FILE_BYTES + 1)


class KeyFiles:
    """The keys of the moment: the HS256 secret and the watched files' keys.

    ``keys()`` is what ``gateway.auth.Verifier`` asks on each check: no I/O, one attribute read.
    ``watch()`` is the loop the app runs (one task, owned by its cleanup context); ``check()``
    is one look at every file, for tests and for that loop.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self._fixed: tuple[VerificationKey, ...] = ()
        if settings.mode == "jwt" and settings.jwt_secret is not None:
            self._fixed = (hmac_key(settings.jwt_secret.reveal()),)
        self._files: list[_Watched] = []
        if settings.mode == "jwt":
            # The files' text as the configuration read and checked it: keys from the start.
            if settings.public_key_file is not None and settings.public_key_pem is not None:
                self._files.append(
                    _Watched(
                        "auth.public_key_file",
                        Path(settings.public_key_file),
                        lambda data: (public_key_from_pem(data),),
                        (public_key_from_pem(settings.public_key_pem),),
                    )
                )
            if settings.jwks_file is not None and settings.jwks_json is not None:
                self._files.append(
                    _Watched(
                        "auth.jwks_file",
                        Path(settings.jwks_file),
                        keys_from_jwks,
                        keys_from_jwks(settings.jwks_json),
                    )
                )
        # Replaced whole on every change, never mutated: a check in progress keeps its set.
        self._keys = self._build()

    def _build(self) -> KeySet:
        return KeySet.of(self._fixed, *(watched.keys for watched in self._files))

    def keys(self) -> KeySet:
        """The keys tokens are checked with now."""
        return self._keys

    @property
    def watching(self) -> bool:
        """Whether there is any file to watch."""
        return bool(self._files)

    async def watch(self, interval: float = KEY_CHECK_SECONDS) -> None:
        """Look at every file each ``interval`` seconds, forever (cancel to stop). A fault of
        ours in one look is logged (a traceback once per kind) and the next look tries again."""
        unexpected = UnexpectedErrors(logger, "key files")
        while True:
            try:
                await self.check()
            except Exception as exc:  # noqa: BLE001 - the watch outlives any bug below
                unexpected.report(exc)
            else:
                unexpected.recovered()
            await asyncio.sleep(interval)

    async def check(self) -> None:
        """Look at every file once; re-read and swap in the keys of those that changed."""
        for watched in self._files:
            await self._check(watched)

    async def _check(self, watched: _Watched) -> None:
        try:
            stamp = await asyncio.to_thread(_stamp, watched.path)
        except OSError as exc:
            if not watched.missing:
                watched.missing = True
                logger.warning(
                    "%s: cannot read %s (%s); the keys read before stay in use",
                    watched.setting,
                    watched.path,
                    exc.strerror or exc,
                )
            return
        if watched.missing:
            watched.missing = False
            watched.stamp = None  # back: read it again, whatever its stamp
        if stamp == watched.stamp or stamp == watched.refused:
            return
        try:
            stamp, data = await asyncio.to_thread(_read, watched.path)
            keys = watched.parse(data)
        except OSError as exc:
            logger.warning("%s: cannot read %s (%s)", watched.setting, watched.path, exc)
            return
        except KeyFileError as exc:
            watched.refused = stamp
            logger.warning(
                "%s: %s changed and is not usable (%s); the keys read before stay in use",
                watched.setting,
                watched.path,
                exc,
            )
            return
        watched.stamp = stamp
        watched.refused = None
        if keys == watched.keys:
            return
        watched.keys = keys
        self._keys = self._build()
        logger.info(
            "%s: %s re-read: %d key(s) in use (%s)",
            watched.setting,
            watched.path,
            len(keys),
            ", ".join(k.kid or "no kid" for k in keys),
        )
