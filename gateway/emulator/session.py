"""One API session as a pure state machine: decoded sentences in, reply sentences out.

No sockets and no faults here (the server adds those); what this module answers is what real
RouterOS 6 and 7 routers answer, word for word (README, "The RouterOS API emulator"): login
(post-6.43 and the pre-6.43 challenge), the ``/interface``, ``/queue/simple``, ``/ppp/active``,
``/ip/hotspot/active``, ``/system/resource`` and ``/system/identity`` menus, ``/cancel`` and
``/quit``, and the real traps for everything else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Final

from gateway.emulator.codec import split_attribute
from gateway.emulator.device import Device
from gateway.emulator.interface import Interface
from gateway.emulator.query import QueryError, compile_query

Words = list[str]

# How many sentences a client may send before logging in; the next one ends the session.
MAX_BEFORE_LOGIN: Final = 8

BAD_LOGIN: Final = "invalid user name or password (6)"
BAD_LOGIN_LEGACY: Final = "cannot log in"
NOT_LOGGED_IN: Final = "not logged in"
NO_SUCH_INTERFACE: Final = "input does not match any value of interface"
INTERRUPTED: Final = "interrupted"

# The menus this router knows: a path to the commands it accepts there.
MENUS: Final[dict[str, frozenset[str]]] = {
    "/interface": frozenset(
        {"print", "getall", "monitor-traffic", "reset-counters", "reset-counters-all"}
    ),
    "/queue/simple": frozenset({"print", "getall", "reset-counters", "reset-counters-all"}),
    "/ppp/active": frozenset({"print", "getall", "remove"}),
    "/ip/hotspot/active": frozenset({"print", "getall", "remove"}),
    "/system/resource": frozenset({"print", "getall"}),
    "/system/identity": frozenset({"print", "getall"}),
}
_PRINT_FLAGS: Final = frozenset({"stats", "detail", "stats-detail", "without-paging", "terse"})


@dataclass(frozen=True, slots=True)
class Stream:
    """A command that never ends by itself (``monitor-traffic`` without ``once``).

    ``rows`` gives one batch of ``!re`` sentences per ``interval`` until ``/cancel``.
    """

    rows: Callable[[], list[Words]]
    tag: str | None
    interval: float = 1.0


@dataclass(slots=True)
class Reply:
    """What to send back for one sentence, and what the connection does after it."""

    sentences: list[Words] = field(default_factory=list)
    close: bool = False
    stream: Stream | None = None
    cancel: bool = False


def legacy_response(password: str, challenge_hex: str, encoding: str = "utf-8") -> str:
    """The pre-6.43 login response: ``00`` + hex(MD5(0x00 + password + challenge)).

    The password is hashed as the bytes the router stores: its text in the router's encoding
    (the same encoding its words travel in). UnicodeEncodeError if that encoding cannot carry it.
    """
    digest = hashlib.md5(
        b"\x00" + password.encode(encoding) + bytes.fromhex(challenge_hex),
        usedforsecurity=False,
    ).hexdigest()
    return "00" + digest


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _trap(message: str, category: int | None = None) -> Words:
    words = ["!trap"]
    if category is not None:
        words.append(f"=category={category}")
    words.append(f"=message={message}")
    return words


def _row(row: dict[str, str], proplist: Sequence[str] | None) -> Words:
    if proplist is None:
        return ["!re", *(f"={k}={v}" for k, v in row.items())]
    return ["!re", *(f"={k}={row[k]}" for k in proplist if k in row)]


class ApiSession:
    """The protocol state of one connection: logged in or not, and the pending challenge.

    The device's RouterOS version decides how login works (see ``_login``).
    """

    def __init__(self, device: Device, *, username: str, password: str) -> None:
        self.device = device
        self._username = username
        self._password = password
        self.logged_in = False
        self.user: str | None = None
        # The pre-6.43 challenge we issued and not yet saw answered; one per session.
        self._challenge: str | None = None
        self._before_login = 0
        # The menus this router has: all of MENUS but those under a package it lacks.
        missing = device.config.missing_menus
        self.menus: dict[str, frozenset[str]] = {
            path: verbs
            for path, verbs in MENUS.items()
            if not any(path == m or path.startswith(m + "/") for m in missing)
        }

    # -- entry point --------------------------------------------------------------------------

    def handle(self, sentence: Sequence[str], *, refuse_login: bool = False) -> Reply:
        """Answer one sentence. ``refuse_login`` makes every login fail (an auth fault)."""
        command = sentence[0]
        tag: str | None = None
        args: dict[str, str] = {}
        queries: list[str] = []
        for word in sentence[1:]:
            if word.startswith(".tag="):
                tag = word[5:]
            elif word.startswith("="):
                name, value = split_attribute(word)
                args[name] = value
            elif word.startswith("?"):
                queries.append(word)
            # Any other word is ignored, as the router does with stray words.
        reply = self._dispatch(command, args, queries, tag, refuse_login)
        if tag is not None:
            for words in reply.sentences:
                words.append(f".tag={tag}")
        return reply

    def _dispatch(
        self,
        command: str,
        args: dict[str, str],
        queries: list[str],
        tag: str | None,
        refuse_login: bool,
    ) -> Reply:
        if command == "/login":
            return self._login(args, refuse_login)
        if command == "/quit":
            return Reply([["!fatal", "session terminated on request"]], close=True)
        if not self.logged_in:
            self._before_login += 1
            if self._before_login > MAX_BEFORE_LOGIN:
                return Reply([["!fatal", "too many commands before login"]], close=True)
            return Reply([_trap(NOT_LOGGED_IN), ["!done"]])
        if command == "/cancel":
            return Reply([["!done"]], cancel=True)
        path, _, verb = command.rpartition("/")
        if path not in self.menus or verb not in self.menus[path]:
            return self._no_such_command(command)
        if verb in ("print", "getall"):
            return self._print(path, args, queries)
        if verb == "monitor-traffic":
            return self._monitor(args, tag)
        if verb == "remove":
            return self._remove(path, args)
        if path == "/queue/simple":
            return self._reset_queue_counters(args, every=verb == "reset-counters-all")
        if verb == "reset-counters":
            return self._reset_counters(args)
        self.device.reset_counters()
        return Reply([["!done"]])

    # -- login --------------------------------------------------------------------------------

    def _login(self, args: dict[str, str], refuse: bool) -> Reply:
        """Log in the way the device's version does.

        - Before 6.43 only the MD5 challenge: any ``/login`` without a ``=response=`` to the
          pending challenge, ``=password=`` or not, gets a new challenge (``!done =ret=...``)
          and no session; a wrong response gets ``cannot log in``.
        - 6.43 to 6.45.0 take both: ``=name= =password=`` logs in, and a bare ``/login`` still
          gets a challenge that can be answered.
        - From 6.45.1 only ``=name= =password=`` logs in. A bare ``/login`` still gets a
          challenge (old clients then fail on the response, which is how Home Assistant's and
          routeros-api's users met 6.45.1), and the response is refused.

        Wrong credentials of the 6.43+ login get ``invalid user name or password (6)``.
        """
        version = self.device.config.version
        name, password, response = args.get("name"), args.get("password"), args.get("response")
        if password is not None and version.plain_login:
            ok = name == self._username and hmac.compare_digest(
                _raw(password), _raw(self._password)
            )
            return self._logged_in(ok and not refuse, BAD_LOGIN)
        challenge, self._challenge = self._challenge, None
        if response is None or challenge is None:
            self._challenge = secrets.token_hex(16)
            return Reply([["!done", f"=ret={self._challenge}"]])
        if not version.challenge_login:
            return self._logged_in(False, BAD_LOGIN)
        expected = legacy_response(self._password, challenge, self.device.config.encoding)
        ok = name == self._username and hmac.compare_digest(_raw(response), _raw(expected))
        return self._logged_in(ok and not refuse, BAD_LOGIN_LEGACY)

    def _logged_in(self, ok: bool, failure: str) -> Reply:
        if not ok:
            return Reply([_trap(failure), ["!done"]])
        self.logged_in, self.user = True, self._username
        return Reply([["!done"]])

    # -- commands -----------------------------------------------------------------------------

    def _no_such_command(self, command: str) -> Reply:
        known = ""
        unknown = command.strip("/") or command
        for part in command.strip("/").split("/"):
            candidate = f"{known}/{part}"
            # A directory above a missing package's (/ip, above /ip/hotspot) is still there.
            missing = self.device.config.missing_menus
            if any(m == candidate or m.startswith(candidate + "/") for m in self.menus) or any(
                m.startswith(candidate + "/") for m in missing
            ):
                known = candidate
                continue
            unknown = part
            break
        return Reply(
            [
                _trap(f"no such command or directory ({unknown})", 0),
                _trap("no such command prefix"),
                ["!done"],
            ]
        )

    def _rows(self, path: str) -> list[dict[str, str]]:
        device = self.device
        device.advance()
        if path == "/interface":
            return [device.interface_row(i) for i in device.iter_interfaces()]
        if path == "/queue/simple":
            return [device.queue_row(q) for q in device.queues.values()]
        if path == "/ppp/active":
            return [device.ppp_active_row(p) for p in device.ppp_active.values()]
        if path == "/ip/hotspot/active":
            return [device.hotspot_active_row(h) for h in device.hotspot_active.values()]
        if path == "/system/resource":
            return [device.resource_row()]
        return [{"name": device.config.identity}]

    def _print(self, path: str, args: dict[str, str], queries: list[str]) -> Reply:
        proplist: list[str] | None = None
        count_only = False
        for name, value in args.items():
            if name == ".proplist":
                proplist = [p for p in value.split(",") if p]
            elif name == "count-only":
                count_only = True
            elif name not in _PRINT_FLAGS:
                return Reply([_trap(f"unknown parameter {name}"), ["!done"]])
        try:
            match = compile_query(queries)
        except QueryError as exc:
            return Reply([_trap(str(exc), 1), ["!done"]])
        rows = self._rows(path)
        if match is not None:
            rows = [r for r in rows if match(r)]
        if count_only:
            return Reply([["!done", f"=ret={len(rows)}"]])
        if not rows and self.device.config.version.sends_empty:
            return Reply([["!empty"], ["!done"]])
        sentences = [_row(r, proplist) for r in rows]
        sentences.append(["!done"])
        return Reply(sentences)

    def _monitor(self, args: dict[str, str], tag: str | None) -> Reply:
        once = "once" in args
        for name in args:
            if name not in ("interface", "once", "duration", "interval", ".proplist"):
                return Reply([_trap(f"unknown parameter {name}"), ["!done"]])
        wanted = [n for n in args.get("interface", "").split(",") if n]
        if not wanted:
            return Reply([_trap("missing value(s) of argument(s) interface", 1), ["!done"]])
        device = self.device
        device.advance()
        interfaces: list[Interface] = []
        for name in wanted:
            try:
                interfaces.append(device.find(name))
            except KeyError:
                # One bad name fails the whole call, as on a real router.
                return Reply([_trap(NO_SUCH_INTERFACE), ["!done"]])
        proplist = [p for p in args.get(".proplist", "").split(",") if p] or None

        def batch() -> list[Words]:
            device.advance()
            live = [i for i in interfaces if i.id in device.interfaces]
            return [_row(device.monitor_row(i), proplist) for i in live]

        if once:
            return Reply([*batch(), ["!done"]])
        interval = float(args.get("interval", "1") or 1)
        return Reply(batch(), stream=Stream(batch, tag, max(interval, 0.1)))

    def _reset_counters(self, args: dict[str, str]) -> Reply:
        names = [n for n in args.get("numbers", "").split(",") if n]
        if not names:
            return Reply([_trap("missing value(s) of argument(s) numbers", 1), ["!done"]])
        for name in names:
            try:
                iface = self.device.find(name)
            except KeyError:
                return Reply([_trap("no such item"), ["!done"]])
            self.device.reset_counters(iface.name)
        return Reply([["!done"]])

    def _items(self, args: dict[str, str], *names: str) -> list[str] | Reply:
        """The comma list of items in the first of ``names`` given; a trap when none is."""
        for name in names:
            if name in args:
                return [item for item in args[name].split(",") if item]
        return Reply([_trap(f"missing value(s) of argument(s) {names[-1]}", 1), ["!done"]])

    def _reset_queue_counters(self, args: dict[str, str], *, every: bool) -> Reply:
        """``/queue/simple/reset-counters =numbers=`` (names or ``.id``s) or ``-all``."""
        if every:
            self.device.reset_queue_counters()
            return Reply([["!done"]])
        items = self._items(args, "numbers")
        if isinstance(items, Reply):
            return items
        device = self.device
        try:
            queues = [device.find_queue(item) for item in items]
        except KeyError:
            # One missing item fails the whole command before anything is reset.
            return Reply([_trap("no such item"), ["!done"]])
        for queue in queues:
            device.reset_queue_counters(queue.id)
        return Reply([["!done"]])

    def _remove(self, path: str, args: dict[str, str]) -> Reply:
        """``remove =.id=*1,*2`` (or ``=numbers=``) on ``/ppp/active`` (the customer is
        disconnected, and dials in again) or ``/ip/hotspot/active`` (the user is logged out)."""
        items = self._items(args, ".id", "numbers")
        if isinstance(items, Reply):
            return items
        device = self.device
        device.advance()
        remove: Callable[[str], bool]
        if path == "/ppp/active":
            # PPP sessions have names (the user), which address them as .ids do.
            by_name = {p.name: p.id for p in device.ppp_active.values()}
            ids = [by_name.get(item, item) for item in items]
            known: Collection[str] = device.ppp_active.keys()
            remove = device.remove_ppp_active
        else:
            ids = items
            known = device.hotspot_active.keys()
            remove = device.remove_hotspot_active
        if any(item not in known for item in ids):
            return Reply([_trap("no such item"), ["!done"]])
        for item in ids:
            remove(item)
        return Reply([["!done"]])
