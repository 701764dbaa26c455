"""What an interface filter costs to build and to match, at the protocol's limits.

In process, no sockets: the same calls a subscribe makes (``name_patterns`` then
``InterfaceFilter.of``) and the same call each tick makes per interface (``matches``). For each
list it prints the best of several runs of:

- ``build, new``: a list never seen before (the compiled-clause cache emptied first);
- ``build, again``: the same list again (another viewer, a reconnect): served from the cache;
- ``match, first``: one 255-character name against the filter, nothing remembered;
- ``match, again``: the same name on the next tick (the verdict is remembered).

Lists: the globs budget spent on short globs, long globs and one glob, each with the most
``*`` allowed; 240 exact names of 250 characters with 16 globs (a subscribe message at every
limit); and the subscribe that stalled the event loop before the limits (256 globs of 125 ``*``),
which is now refused before anything is compiled.

Run: ``python loadtest/bench/bench_filters.py [--repeat 7]``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import time
from collections.abc import Callable

import orjson

from gateway.core import filters
from gateway.core.filters import MAX_GLOB_CHARACTERS, MAX_STARS, InterfaceFilter, name_patterns

NAME_LENGTH = 255
NAMES = 300
"""Interfaces matched per run: a router with 300 PPPoE customers."""


def best(run: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def starred(length: int, rnd: random.Random) -> str:
    """A glob of ``length`` characters with MAX_STARS "*" spread through letters of the names."""
    body = [rnd.choice("ab") for _ in range(length - MAX_STARS)]
    for _ in range(MAX_STARS):
        body.insert(rnd.randrange(len(body) + 1), "*")
    return "".join(body)


def lists(rnd: random.Random) -> dict[str, list[object]]:
    chosen: dict[str, list[object]] = {}
    for length in (16, 64, MAX_GLOB_CHARACTERS):
        count = MAX_GLOB_CHARACTERS // length
        chosen[f"{count} globs of {length} chars, {MAX_STARS} '*' each"] = [
            starred(length, rnd) for _ in range(count)
        ]
    chosen["240 exact names of 250 chars + 16 globs of 16 chars"] = [
        {"exact": "".join(rnd.choice("ab") for _ in range(250))} for _ in range(240)
    ] + [starred(16, rnd) for _ in range(16)]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rnd = random.Random(1)
    names = ["".join(rnd.choice("ab") for _ in range(NAME_LENGTH)) for _ in range(NAMES)]
    print(f"load average {os.getloadavg()[0]:.2f}; best of {args.repeat}")
    print("| list | build, new | build, again | match, first | match, again |")
    print("|---|---|---|---|---|")
    for label, entries in lists(rnd).items():

        def build(entries: list[object] = entries) -> InterfaceFilter:
            return InterfaceFilter.of(name_patterns(entries, max_entries=256, max_length=256))

        def build_new() -> None:
            # Both caches: ours of compiled clauses, and the re module's of compiled patterns.
            filters._clause.cache_clear()
            re.purge()
            build()

        new = best(build_new, args.repeat)
        again = best(build, args.repeat)
        flt = build()

        def match_first(flt: InterfaceFilter = flt) -> None:
            for matcher in flt._matchers:
                matcher.verdicts.clear()
            for name in names:
                flt.matches(name)

        def match_again(flt: InterfaceFilter = flt) -> None:
            for name in names:
                flt.matches(name)

        first = best(match_first, args.repeat) / NAMES
        match_again()
        warm = best(match_again, args.repeat) / NAMES
        print(
            f"| {label} | {new * 1e3:.2f} ms | {again * 1e6:.0f} µs | {first * 1e6:.1f} µs "
            f"| {warm * 1e6:.2f} µs |"
        )
    stalling = orjson.dumps({"interfaces": ["*a" * 125 for _ in range(256)]})

    def refuse() -> None:
        try:
            name_patterns(orjson.loads(stalling)["interfaces"], max_entries=256, max_length=256)
        except ValueError:
            return
        raise AssertionError("the stalling list was accepted")

    print(
        f"\nThe stalling subscribe (256 globs of 125 '*', {len(stalling)} bytes): parsed and "
        f"refused in {best(refuse, args.repeat) * 1e3:.3f} ms"
    )


if __name__ == "__main__":
    main()
