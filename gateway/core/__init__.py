"""Pure core: row parsing, rates, frames, backoff. No I/O, no clocks, no event loop.

Everything here takes time as an argument and returns plain values, so it is tested with plain
values and reused unchanged by the poller, the hub, the REST views and the emulator.
"""
