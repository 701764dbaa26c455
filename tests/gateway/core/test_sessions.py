"""PPP sessions joined to the interfaces and queues of their customers."""

from __future__ import annotations

import pytest

from gateway.core.sessions import SessionBook, is_ppp_name
from gateway.core.sources import PppSession

ALICE = PppSession("*A", "alice", "pppoe", "48:A9:8A:00:00:01", "100.64.0.2", 3600)
BOB = PppSession("*B", "bob", "l2tp", None, "100.64.0.3", None)

INTERVAL = 1.0
EVERY = 30.0


WALL = 1_764_377_000.0


def read(book: SessionBook, at: float, *sessions: PppSession) -> None:
    book.update(sessions, at, WALL + at)


def wanting(book: SessionBook) -> bool:
    """Whether the book asks for a read sooner (read through a call: it changes as rows join)."""
    return book.wanting


@pytest.mark.parametrize(
    ("name", "ppp"),
    [
        ("<pppoe-alice>", True),
        ("<l2tp-b>", True),
        ("<ovpn-x-y>", True),
        ("<pppoe->", False),
        ("<vlan-7>", False),
        ("pppoe-alice", False),
        ("<pppoe-alice", False),
        ("ether1", False),
    ],
)
def test_ppp_interface_names_are_recognised(name: str, ppp: bool) -> None:
    """Only <SERVICE-USER> names of PPP services are PPP interfaces."""
    assert is_ppp_name(name) is ppp


def test_interface_gets_its_session_and_when_it_began() -> None:
    """<pppoe-alice> carries alice's session: login, service, MAC, address and the Unix time
    it began (the read's time less its uptime)."""
    book = SessionBook()
    read(book, 100.0, ALICE, BOB)
    view = book.view()
    assert view.interface("<pppoe-alice>", "*1") == {
        "user": "alice",
        "service": "pppoe",
        "caller_id": "48:A9:8A:00:00:01",
        "address": "100.64.0.2",
        "since": round(WALL + 100.0 - 3600),
    }
    assert view.interface("<l2tp-bob>", "*2") == {
        "user": "bob",
        "service": "l2tp",
        "caller_id": None,
        "address": "100.64.0.3",
        "since": None,
    }
    assert view.interface("ether1", "*3") is None
    assert view.interface("<pppoe-bob>", "*4") is None  # bob's session is l2tp


def test_a_session_is_one_object_from_read_to_read() -> None:
    """An interface and a queue of one customer, tick after tick, share one session object
    until the next read (nothing about it changes between reads)."""
    book = SessionBook()
    read(book, 0.0, ALICE)
    first = book.view().interface("<pppoe-alice>", "*1")
    assert first is book.view().queue("<pppoe-alice>", None, "*9")
    book.end_tick()
    assert book.view().interface("<pppoe-alice>", "*1") is first


def test_a_redial_drops_the_join_until_the_next_read() -> None:
    """After a re-dial (a new .id under the same name) the row has no session, and the book asks
    for a read, which joins the new row again."""
    book = SessionBook()
    read(book, 0.0, ALICE)
    assert book.view().interface("<pppoe-alice>", "*1") is not None
    book.end_tick()
    assert not wanting(book)
    assert book.view().interface("<pppoe-alice>", "*1") is not None
    assert book.view().interface("<pppoe-alice>", "*7") is None
    assert wanting(book)
    read(book, 3.0, ALICE._replace(id="*AA", uptime=2))
    assert book.view().interface("<pppoe-alice>", "*7") == {
        "user": "alice",
        "service": "pppoe",
        "caller_id": "48:A9:8A:00:00:01",
        "address": "100.64.0.2",
        "since": round(WALL + 3.0 - 2),
    }
    assert not wanting(book)


def test_a_customer_who_dialed_in_after_the_read_waits_for_the_next() -> None:
    """A PPP interface that appeared after the read has no session yet and asks for a read."""
    book = SessionBook()
    read(book, 0.0)
    book.end_tick()
    assert book.view().interface("<pppoe-carol>", "*5") is None
    assert book.wanting


def test_a_ppp_row_without_session_at_the_read_does_not_ask_again() -> None:
    """An offline customer's PPPoE binding (no session when read) stays without one and does
    not make the book read every tick."""
    book = SessionBook()
    read(book, 0.0)
    assert book.view().interface("<pppoe-offline>", "*5") is None
    book.end_tick()
    assert book.view().interface("<pppoe-offline>", "*5") is None
    assert not book.wanting


def test_queue_joins_by_name_target_interface_or_address() -> None:
    """A queue finds its session by its <pppoe-NAME> name, an interface in its target, or the
    session's address in its target (with or without /32)."""
    book = SessionBook()
    read(book, 0.0, ALICE, BOB)
    view = book.view()
    assert view.queue("<pppoe-alice>", "<pppoe-alice>", "*1") is not None
    shaped = view.queue("alice-plan", "<pppoe-alice>", "*2")
    assert shaped is not None
    assert shaped["user"] == "alice"
    by_address = view.queue("cust-bob", "10.0.0.9/32,100.64.0.3/32", "*3")
    assert by_address is not None
    assert by_address["user"] == "bob"
    bare = view.queue("cust-alice", "100.64.0.2", "*4")
    assert bare is not None
    assert bare["user"] == "alice"
    assert view.queue("cust-none", "10.0.0.9/32", "*5") is None
    assert view.queue("cust-nothing", None, "*6") is None


@pytest.mark.parametrize(
    ("since_read", "wanting", "due"),
    [(29.9, False, False), (30.0, False, True), (2.9, True, False), (3.0, True, True)],
)
def test_reads_are_due_every_interval_or_sooner_when_wanting(
    since_read: float, wanting: bool, due: bool
) -> None:
    """Sessions are read every sessions_interval, or after a tenth of it when a row wants one."""
    book = SessionBook()
    assert book.due(0.0, INTERVAL, EVERY)
    read(book, 100.0)
    book.wanting = wanting
    assert book.due(100.0 + since_read, INTERVAL, EVERY) is due


def test_a_wanting_read_is_never_sooner_than_an_interval() -> None:
    """With a short sessions interval, re-dials still cost at most one read per tick."""
    book = SessionBook()
    read(book, 0.0)
    book.wanting = True
    assert not book.due(0.5, 1.0, 2.0)
    assert book.due(1.0, 1.0, 2.0)


def test_forget_starts_over() -> None:
    """After forget() nothing is joined and a read is due at once."""
    book = SessionBook()
    read(book, 0.0, ALICE)
    book.forget()
    assert book.due(0.1, INTERVAL, EVERY)
    assert book.view().interface("<pppoe-alice>", "*1") is None
