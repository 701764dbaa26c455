"""What an emulated router is made of: its configuration, the interfaces named by hand, a
configuration sized to an exact interface count, and the names and MACs its rows carry.

Pure: plain values, no clock and no randomness. ``gateway.emulator.device`` builds a router from
a ``DeviceConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gateway.emulator.version import Version

__all__ = [
    "DEFAULT_VERSION",
    "DeviceConfig",
    "NamedInterface",
    "non_ascii_customer",
    "non_ascii_name",
    "port_mac",
    "sized_config",
]

DEFAULT_VERSION: Final = Version(7, 18, 2)
"""The version a device acts as unless its configuration says otherwise."""


@dataclass(frozen=True, slots=True)
class NamedInterface:
    """One interface with a chosen name (and optionally a chosen ``.id``), for a test or a demo.

    ``name`` is the text the router stores; on the wire it is encoded in the device's
    ``encoding``, and a lone surrogate (U+DC80 to U+DCFF) stands for one raw byte (so a name can
    carry bytes that are not valid in any encoding). ``number`` is the numeric part of ``.id``
    (``4`` is ``*4``); None takes the next free one. It carries a steady 1 Mbit/s down and
    0.5 Mbit/s up until ``Device.set_traffic`` says otherwise.
    """

    name: str
    type: str = "ether"
    number: int | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """What the router looks like. Counts are the numbers of interfaces of each kind."""

    version: Version = DEFAULT_VERSION
    identity: str = "MikroTik"
    ethernet: int = 8
    sfp: int = 1
    vlans: int = 0
    bridge: bool = True
    pppoe: int = 0
    # Mean PPPoE session length and re-dial gap, in seconds (0 = customers never drop).
    pppoe_session: float = 600.0
    pppoe_redial: float = 5.0
    # Text encoding of names on the wire; a name that suits it carries non-ASCII characters.
    encoding: str = "utf-8"
    non_ascii_name: bool = True
    seed: int = 1
    board: str = "CCR2004-1G-12S+2XS"
    # Interfaces named one by one, after the generated ones (and ``lo``), before PPPoE customers.
    named: tuple[NamedInterface, ...] = ()
    # Static simple queues, one per customer with an address and a plan; its comment holds the
    # customer id ("CID-100001"). They come first in /queue/simple, before dynamic queues.
    queues: int = 0
    # Whether PPPoE customers' profiles carry a rate limit, so each session brings a dynamic
    # simple queue <pppoe-USER> with the customer's plan.
    pppoe_queues: bool = True
    # Hotspot users, and their mean session length and re-login gap in seconds (0 = they never
    # log out by themselves; a voucher's hour still ends its session).
    hotspot: int = 0
    hotspot_session: float = 1800.0
    hotspot_relogin: float = 60.0
    # Menus the router does not have, as a router without a package (RouterOS 6 without the
    # hotspot package: ("/ip/hotspot",)): commands under them get "no such command".
    missing_menus: tuple[str, ...] = ()


# Names with characters outside ASCII, as Winbox users type them; the first that the configured
# encoding can carry is used.
_NON_ASCII_NAMES: Final = ("ether-café", "ether-офис", "ether-łódź", "ether-東京")


def non_ascii_name(encoding: str) -> str | None:
    """The first of those names the encoding can carry; None when it carries none (ASCII)."""
    for name in _NON_ASCII_NAMES:
        try:
            name.encode(encoding)
        except UnicodeEncodeError:
            continue
        return name
    return None


def port_mac(n: int) -> str:
    """The MAC of the router's own port ``n`` (its ``.id`` number): MikroTik's vendor prefix
    ``48:8F:5A``, then ``n`` in three bytes, uppercase as RouterOS prints it."""
    return "48:8F:5A:" + ":".join(f"{(n >> s) & 0xFF:02X}" for s in (16, 8, 0))


# Customer names as billing systems write them into comments; the first that the configured
# encoding can carry goes into the first static queue's comment.
_NON_ASCII_CUSTOMERS: Final = ("Müller", "Мюллер", "Łukasz", "山田")


def non_ascii_customer(encoding: str) -> str | None:
    """The first of those customer names the encoding can carry; None when it carries none."""
    for name in _NON_ASCII_CUSTOMERS:
        try:
            name.encode(encoding)
        except UnicodeEncodeError:
            continue
        return name
    return None


def sized_config(interfaces: int = 8, pppoe: int = 0, **kw: object) -> DeviceConfig:
    """A device with exactly ``interfaces`` static rows (plus ``lo`` on v7) and ``pppoe`` customers.

    The mix is what a real box has: Ethernet ports first (up to 24), one SFP+ uplink and a bridge
    once there are a few ports, one interface with a non-ASCII name, VLANs for the rest.
    """
    if interfaces < 1:
        raise ValueError("a router has at least one interface")
    sfp = 1 if interfaces >= 4 else 0
    bridge = interfaces >= 3
    # Popped whatever the size, so it never reaches DeviceConfig twice. When the encoding carries
    # no non-ASCII name (ASCII), that row goes to the ports and VLANs, so the count stays exact.
    wanted = bool(kw.pop("non_ascii_name", True))
    encoding = str(kw.get("encoding", DeviceConfig().encoding))
    non_ascii = interfaces >= 6 and wanted and non_ascii_name(encoding) is not None
    rest = interfaces - sfp - int(bridge) - int(non_ascii)
    ethernet = min(rest, 24)
    return DeviceConfig(
        ethernet=ethernet,
        sfp=sfp,
        bridge=bridge,
        vlans=rest - ethernet,
        pppoe=pppoe,
        non_ascii_name=non_ascii,
        **kw,  # type: ignore[arg-type]
    )
