"""Which rows a viewer sees, by name: ``InterfaceFilter`` and the name filter lists clients write.

A subscription's ``names`` (or a token's claim, or a router's configured filter) is a list of
globs and ``{"exact": name}`` entries: :func:`name_patterns` reads one, within limits that keep
it cheap to compile and match; :class:`InterfaceFilter` is what it becomes, a hashable
conjunction of glob clauses that the hub keys its per-tick encodings by. Matching is compiled
once per clause and remembered per name, shared by every filter with that clause. Pure: no I/O.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "EXACT",
    "MAX_GLOB_CHARACTERS",
    "MAX_STARS",
    "InterfaceFilter",
    "literal_glob",
    "name_patterns",
]

# The characters that make a glob more than a literal name (see fnmatch).
_MAGIC: Final = re.compile(r"[*?\[]")
# One of them written as a literal, the way literal_glob writes it: [*], [?] or [[].
_ESCAPED: Final = re.compile(r"\[([*?\[])\]")
# A character class as fnmatch reads one: "[", an optional "!", an optional first "]", then up
# to the next "]". A "[" with no "]" after it is a literal.
_CLASS: Final = re.compile(r"\[!?\]?[^\]]*\]")

MAX_STARS: Final = 4
"""Most ``*`` one glob of a name filter may hold (a ``*`` inside ``[...]`` is a literal).

Why: each ``*`` is a scan of the name when matching and a group in the compiled pattern; a glob
of 120 stars cost a third of a second to compile. Real patterns (``<pppoe-*>``, ``*uplink*``)
hold one or two."""

MAX_GLOB_CHARACTERS: Final = 256
"""Most characters all the globs of one name filter list may hold together.

Why: compiling a glob costs about 2 microseconds a character, so this bounds what one subscribe
(or token) can make the gateway compile. ``{"exact": name}`` entries do not count: they are
looked up in a set, never compiled."""

EXACT: Final = "exact"
"""The key of an exact-name entry in a name filter list: ``{"exact": "ether1 [WAN]"}``."""


@dataclass(frozen=True, slots=True)
class InterfaceFilter:
    """Which interfaces a viewer sees, by name glob. Hashable; equal filters hash equal.

    Globs follow :func:`fnmatch.fnmatchcase`: case-sensitive, ``*`` any run, ``?`` one
    character, ``[seq]``/``[!seq]`` a character class. ``<`` and ``>`` are ordinary characters,
    so ``"<pppoe-*>"`` matches ``<pppoe-alice>`` as written. ``[`` is special: to match a literal
    ``[`` write ``[[]``.

    The filter is a conjunction of clauses, each a disjunction of globs: a name passes when, in
    every clause, at least one glob matches it. :meth:`of` makes one clause; :meth:`intersect`
    joins clauses (a subscription's own list narrowing a token's list cannot, in general, be
    written as one glob list). No clause at all means every interface (:meth:`all`); a clause
    with no glob matches nothing.

    The form is canonical: globs in a clause are sorted and unique, clauses are sorted and
    unique, and a clause implied by a narrower one is dropped. So ``of(["b", "a"])``,
    ``of(["a", "b", "a"])`` and ``of(["a", "b"]).intersect(all())`` are equal and hash equal:
    the hub keys its per-tick encodings by filter.
    """

    clauses: tuple[tuple[str, ...], ...] = ()
    # One matcher per clause, from a cache shared by every filter: a filter is matched against
    # every interface of every tick, and a client that sends the same subscribe again (or a
    # thousand viewers of one token) must not compile it again.
    _matchers: tuple[_Clause, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        clauses = _canonical(self.clauses)
        # Frozen dataclass: the canonical form replaces whatever the caller passed.
        object.__setattr__(self, "clauses", clauses)
        object.__setattr__(self, "_matchers", tuple(map(_clause, clauses)))

    @classmethod
    def all(cls) -> InterfaceFilter:
        """The filter every interface passes."""
        return cls()

    @classmethod
    def of(cls, globs: Iterable[str]) -> InterfaceFilter:
        """The filter a name passes when any of ``globs`` matches it.

        An empty ``globs`` matches nothing; callers that mean "no restriction" use :meth:`all`.
        Exact names enter as :func:`literal_glob` globs (:func:`name_patterns` reads both kinds).
        """
        return cls((tuple(globs),))

    @property
    def is_all(self) -> bool:
        """Whether every interface passes (the hub can then share the unfiltered frame)."""
        return not self.clauses

    def matches(self, name: str) -> bool:
        """Whether the interface called ``name`` passes every clause."""
        return all(matcher.matches(name) for matcher in self._matchers)

    def intersect(self, other: InterfaceFilter) -> InterfaceFilter:
        """The filter a name passes only when it passes both ``self`` and ``other``."""
        return InterfaceFilter(self.clauses + other.clauses)

    def within(self, other: InterfaceFilter) -> bool:
        """Whether every name this filter passes certainly passes ``other`` too.

        True when each of ``other``'s clauses is implied by one of this filter's (the same
        clause, or one whose every glob is in it or names one name it matches). Where that
        cannot be told cheaply and for certain the answer is False: a narrower filter written
        with different globs may be judged not within, a wider one never within. A token
        refresh relies on it (``gateway.auth.Grant.within``).
        """
        return all(
            theirs in self.clauses or any(_implies(mine, theirs) for mine in self.clauses)
            for theirs in other.clauses
        )

    def select(
        self, names: Sequence[str | None], positions: Callable[[str], Iterable[int]]
    ) -> tuple[int, ...]:
        """The positions in ``names`` of the names that pass, ascending (None never passes).

        ``positions(name)`` gives every position of ``name`` in ``names``. A clause of names
        only (a customer's token: ``["<pppoe-alice>"]``) is looked up with it, so the cost is
        its few names, not one match per interface; otherwise each name is matched (a lookup
        of the clause's remembered verdict, see ``_Clause.matches``).
        """
        if not self.clauses:
            return tuple(range(len(names)))
        matchers = self._matchers
        for matcher in matchers:
            if matcher.pattern is None:
                found = sorted({i for name in matcher.names for i in positions(name)})
                if len(matchers) == 1:
                    return tuple(found)
                # A position found by name holds that name (never None).
                return tuple(i for i in found if self.matches(str(names[i])))
        matches = self.matches
        return tuple(i for i, name in enumerate(names) if name is not None and matches(name))


def literal_glob(name: str) -> str:
    """The glob that matches ``name`` and no other name.

    ``*``, ``?`` and ``[`` are each written as a one-character class (``[*]``, ``[?]``,
    ``[[]``); every other character (``]``, ``\\``, ``<``, spaces, quotes, anything non-ASCII)
    is already literal in a glob. ``literal_glob("ether1 [WAN]")`` is ``"ether1 [[]WAN]"``.
    """
    if _plain(name):
        return name
    return _MAGIC.sub(lambda match: f"[{match.group()}]", name)


def _plain(text: str) -> bool:
    """Whether ``text`` holds none of ``*``, ``?`` and ``[`` (so as a glob it is itself).

    The common case for names; three scans for one character each cost a tenth of one regex
    search for any of them."""
    return "*" not in text and "?" not in text and "[" not in text


def name_patterns(
    entries: object, *, max_entries: int | None = None, max_length: int | None = None
) -> tuple[str, ...]:
    """Read a name filter list as clients write it, as globs for :meth:`InterfaceFilter.of`.

    ``entries`` must be a list; each entry is either a string, a glob a user typed as a pattern
    (``"<pppoe-*>"``), or ``{"exact": "name"}``, a name picked from a list, which matches that
    name only, whatever characters it holds (``{"exact": "ether1 [WAN]"}`` matches
    ``ether1 [WAN]``, never ``ether1 W``). Strings and names must be non-empty and at most
    ``max_length`` characters; the list at most ``max_entries`` long. Whatever the caller's
    limits, a glob holds at most :data:`MAX_STARS` ``*`` and the globs of the list at most
    :data:`MAX_GLOB_CHARACTERS` characters together, so no list costs much to compile or match.

    Raises ``ValueError`` saying what is wrong (and which limit), for the caller to prefix with
    where it was.
    """
    if not isinstance(entries, list):
        raise ValueError(f'expected a list of name globs and {{"{EXACT}": name}} objects')
    if max_entries is not None and len(entries) > max_entries:
        raise ValueError(f"at most {max_entries} entries, got {len(entries)}")
    globs = []
    glob_characters = 0
    for entry in entries:
        exact = isinstance(entry, dict) and len(entry) == 1 and EXACT in entry
        text = entry[EXACT] if exact else entry
        if not isinstance(text, str) or not text:
            raise ValueError(
                f'each entry must be a name glob (a non-empty string) or {{"{EXACT}": name}}, '
                f"got {_show(entry)}"
            )
        if max_length is not None and len(text) > max_length:
            raise ValueError(f"a name or glob is at most {max_length} characters long")
        if exact:
            globs.append(literal_glob(text))
            continue
        stars = _CLASS.sub("", text).count("*") if "*" in text else 0
        if stars > MAX_STARS:
            raise ValueError(f'a glob holds at most {MAX_STARS} "*", got {stars} in {_show(text)}')
        glob_characters += len(text)
        if glob_characters > MAX_GLOB_CHARACTERS:
            raise ValueError(
                f"the globs of one list hold at most {MAX_GLOB_CHARACTERS} characters together "
                f'({{"{EXACT}": name}} entries do not count)'
            )
        globs.append(text)
    return tuple(globs)


def _show(value: object) -> str:
    """A client's value for an error message, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _canonical(clauses: Iterable[Iterable[str]]) -> tuple[tuple[str, ...], ...]:
    unique = {tuple(sorted(set(clause))) for clause in clauses}
    # Absorption: when every name passing clause A also passes clause B, B adds nothing to the
    # conjunction. Dropping it makes f.intersect(f) == f, and a token's ["<pppoe-alice>"]
    # narrowed by a subscription's ["<pppoe-*>"] equal to the token's filter alone, so the hub
    # encodes that frame once for both.
    # Two different clauses can imply each other ({"ab", "a*"} and {"a*"}): they are
    # equivalent, and only the smaller (in sort order) stays, never neither.
    kept = [
        clause
        for clause in unique
        if not any(
            other != clause
            and _implies(other, clause)
            and (other < clause or not _implies(clause, other))
            for other in unique
        )
    ]
    return tuple(sorted(kept))


def _implies(narrow: tuple[str, ...], wide: tuple[str, ...]) -> bool:
    """Whether every name matching a glob of ``narrow`` also matches a glob of ``wide``.

    Decided only where it is cheap and certain: a glob that is in both, or a glob that matches
    one name only (see :func:`_literal`) that ``wide`` matches. Otherwise "no", which only
    costs an extra clause, never a wrong answer.
    """
    if len(narrow) > _ABSORB_LIMIT:
        return False
    matcher = _clause(wide)
    return all(glob in matcher.globs or _literal_passes(glob, matcher) for glob in narrow)


# Most globs a clause may have for absorption to be tried (each is one match against the other
# clause). Past it clauses are kept as they are: correct, only less shared between viewers.
_ABSORB_LIMIT: Final = 16


def _literal_passes(glob: str, matcher: _Clause) -> bool:
    name = _literal(glob)
    return name is not None and matcher.matches_once(name)


def _literal(glob: str) -> str | None:
    """The one name ``glob`` matches when it is a name (possibly written by
    :func:`literal_glob`), else None."""
    # split() alternates text between escapes and the escaped characters.
    parts = _ESCAPED.split(glob)
    if any(_MAGIC.search(text) for text in parts[::2]):
        return None
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class _Clause:
    """One clause, ready to match: its names looked up in a set, the rest of its globs compiled
    into one pattern (None when every glob is a name; ``(?!)`` when the clause is empty)."""

    globs: frozenset[str]
    names: frozenset[str]
    pattern: re.Pattern[str] | None
    # The pattern's answer per interface name, so each tick costs a lookup per interface rather
    # than a scan of the name per "*" of every glob. Shared by every filter with this clause;
    # holds router names only (see matches), and starts over when it reaches _VERDICTS.
    verdicts: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def matches(self, name: str) -> bool:
        """Whether ``name`` (an interface's, as a router sent it) passes this clause."""
        if name in self.names:
            return True
        if self.pattern is None:
            return False
        verdict = self.verdicts.get(name)
        if verdict is None:
            if len(self.verdicts) >= _VERDICTS:
                self.verdicts.clear()
            verdict = self.verdicts[name] = self.pattern.match(name) is not None
        return verdict

    def matches_once(self, name: str) -> bool:
        """:meth:`matches` without remembering the answer (for names a client wrote)."""
        return name in self.names or (
            self.pattern is not None and self.pattern.match(name) is not None
        )


# Most names a clause remembers its answer for: more than the interfaces of a big router.
_VERDICTS: Final = 4096


@functools.lru_cache(maxsize=128)
def _clause(globs: tuple[str, ...]) -> _Clause:
    """The matcher of a canonical clause (sorted, unique globs), compiled once while it is among
    the 128 most recently used: every filter with that clause shares it."""
    names: set[str] = set()
    patterns: list[str] = []
    for glob in globs:
        name = glob if _plain(glob) else _literal(glob)
        if name is not None:
            names.add(name)
        else:
            # fnmatch.translate anchors each glob at the end (\Z); re.match anchors the start.
            # Its translation of "*" is an atomic group, so matching costs one scan of the
            # name per "*", never backtracking across them.
            patterns.append(f"(?:{fnmatch.translate(glob)})")
    if not globs:
        # Matches nothing: an empty alternation would match everything.
        patterns.append("(?!)")
    pattern = re.compile("|".join(patterns)) if patterns else None
    return _Clause(frozenset(globs), frozenset(names), pattern)
