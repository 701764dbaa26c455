"""A RouterOS API emulator that speaks the real binary protocol, with switchable faults."""

from gateway.emulator.device import Device, DeviceConfig, NamedInterface, sized_config
from gateway.emulator.server import Fault, RouterEmulator
from gateway.emulator.version import Version

__all__ = [
    "Device",
    "DeviceConfig",
    "Fault",
    "NamedInterface",
    "RouterEmulator",
    "Version",
    "sized_config",
]
