"""The client-side contract checker: what it accepts and what it names as broken."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.contract import MESSAGE_LIMIT, Phase, Rule, StreamCheck, Violation


def traffic(seq: int, router: str = "r", interval: float = 1.0) -> dict[str, Any]:
    return {"type": "traffic", "router": router, "seq": seq, "ts": 1.0, "interval": interval}


def status(state: str = "up", router: str = "r") -> dict[str, Any]:
    return {"type": "status", "router": router, "state": state, "error": None, "since": 0.0}


def history(
    *seqs: int, router: str = "r", more: bool = False, reset: bool = False
) -> dict[str, Any]:
    frames = [traffic(s, router) for s in seqs]
    return {"type": "history", "router": router, "reset": reset, "more": more, "frames": frames}


def texts(found: list[Violation]) -> list[str]:
    return [v.text for v in found]


def live(check: StreamCheck, *messages: dict[str, Any], now: float = 0.0) -> list[Violation]:
    """Every violation found in ``messages``, all arriving at ``now``."""
    return [v for m in messages for v in check.receive(m, now)]


def subscribed(router: str = "r", since: int | None = None, *seqs: int) -> StreamCheck:
    check = StreamCheck()
    check.subscribe(router, 0.0, since=since)
    assert live(check, status("up", router), history(*seqs, router=router)) == []
    return check


def test_a_well_behaved_stream_passes() -> None:
    """hello, status, a history in two messages, then contiguous live frames: nothing to report."""
    check = StreamCheck()
    check.connect(0.0)
    found = live(check, {"type": "hello", "v": 1, "routers": [], "heartbeat": 5})
    check.subscribe("r", 0.0)
    found += live(check, status(), history(1, 2, more=True), history(3), traffic(4), traffic(5))
    assert found == []
    assert check.phase("r") is Phase.LIVE
    assert check.last_seq("r") == 5
    assert check.heartbeat == 5.0


def test_hello_must_come_first() -> None:
    """A connection whose first message is not hello is named."""
    check = StreamCheck()
    check.connect(0.0)
    check.subscribe("r", 0.0)
    assert texts(live(check, status())) == ["the server did not say hello first"]


def test_status_must_come_first_after_a_subscribe() -> None:
    """A history or a traffic frame before the router's status is out of order."""
    check = StreamCheck()
    check.subscribe("r", 0.0)
    assert texts(live(check, history())) == ["expected status first after subscribe, got 'history'"]
    other = StreamCheck()
    other.subscribe("r", 0.0)
    assert texts(live(other, traffic(1))) == [
        "expected status first after subscribe, got 'traffic'"
    ]


def test_live_frames_wait_for_the_end_of_the_history() -> None:
    """A traffic frame, or another status, between the history's messages is out of order."""
    check = StreamCheck()
    check.subscribe("r", 0.0)
    assert live(check, status(), history(1, more=True)) == []
    assert check.phase("r") is Phase.HISTORY
    assert texts(live(check, traffic(2))) == ["expected history after status, got 'traffic'"]
    again = StreamCheck()
    again.subscribe("r", 0.0)
    assert texts(live(again, status(), status("down"))) == [
        "expected history after status, got 'status'"
    ]


def test_history_messages_carry_frames_more_and_one_reset() -> None:
    """History messages without frames or more, or disagreeing on reset, are named."""
    check = StreamCheck()
    check.subscribe("r", 0.0)
    bad = {"type": "history", "router": "r", "reset": False, "more": True}
    found = live(check, status(), bad, {**history(), "reset": True, "more": "no"})
    assert texts(found) == [
        "history without a frames list",
        "history without more: true or false",
        "history messages disagree on reset",
    ]


@pytest.mark.parametrize(
    ("seqs", "text"),
    [
        ((1, 2, 4), "seq gap: frames missing"),
        ((1, 2, 2), "seq duplicate or out of order"),
        ((1, 3, 2), "seq gap: frames missing"),
    ],
)
def test_live_seq_grows_by_one(seqs: tuple[int, ...], text: str) -> None:
    """A gap, a repeat or a step back in live seq is named, with the numbers in the detail."""
    check = subscribed()
    found = live(check, *(traffic(s) for s in seqs))
    assert texts(found)[0] == text
    assert all(v.rule is Rule.SEQ for v in found)
    assert "then" in found[0].detail


def test_a_history_must_be_contiguous_and_live_frames_continue_it() -> None:
    """Frames missing inside a history, or between its last frame and the first live one."""
    check = StreamCheck()
    check.subscribe("r", 0.0)
    assert texts(live(check, status(), history(1, 3))) == ["history: seq not contiguous"]
    assert texts(live(check, traffic(5))) == ["seq gap: frames missing"]


def test_a_resume_continues_from_since_across_connections() -> None:
    """On a new connection, a resume's history must start right after ``since``; an empty one
    is followed by ``since + 1``."""
    check = subscribed("r", None, 1, 2)
    assert live(check, traffic(3)) == []
    check.connect(1.0)
    live(check, {"type": "hello", "heartbeat": 20})
    check.subscribe("r", 1.0, since=check.last_seq("r"))
    assert texts(live(check, status(), history(5))) == ["history: seq not contiguous"]
    check.connect(2.0)
    live(check, {"type": "hello", "heartbeat": 20})
    check.subscribe("r", 2.0, since=5)
    assert live(check, status(), history(), traffic(6)) == []


def test_a_reset_resume_has_lost_frames() -> None:
    """A resume answered with ``reset: true`` is named once; the stream goes on from it."""
    check = subscribed("r", None, 1, 2)
    check.subscribe("r", 1.0, since=2)
    found = live(check, status(), history(40, 41, reset=True), traffic(42))
    assert texts(found) == ["resume: history reset, frames lost"]
    assert found[0].rule is Rule.LOST


def test_a_fresh_subscribe_may_start_anywhere() -> None:
    """Without ``since`` the history may start at any seq (a ring) and need not follow what an
    earlier subscription saw."""
    check = subscribed("r", None, 100, 101)
    check.subscribe("r", 1.0)
    assert live(check, status(), history(50, 51), traffic(52)) == []


def test_frames_already_on_the_way_before_a_resubscribe_stay_live() -> None:
    """Re-subscribing a live router: frames sent before the new status are the old stream."""
    check = subscribed("r", None, 1)
    check.subscribe("r", 1.0)
    assert live(check, traffic(2), status(), history(1, 2), traffic(3)) == []


def test_frames_of_routers_not_subscribed_to_are_named_unless_unsubscribed() -> None:
    """A frame of a router never subscribed to is out of order; after an unsubscribe, frames
    already on their way are not judged."""
    check = subscribed()
    assert texts(live(check, traffic(1, router="other"))) == ["frame of a router not subscribed to"]
    check.unsubscribe("r")
    assert live(check, traffic(9), status("down")) == []


def test_streams_are_per_router_and_source() -> None:
    """Each router and source has its own seq: interleaving them is no gap."""
    check = StreamCheck()
    check.subscribe("a", 0.0)
    check.subscribe("b", 0.0)
    check.subscribe("a", 0.0, source="queues")
    queues = {**traffic(70, "a"), "source": "queues"}
    found = live(
        check,
        status(router="a"),
        history(router="a"),
        {**history(router="a"), "source": "queues"},
        status(router="b"),
        history(router="b"),
        traffic(1, "a"),
        traffic(10, "b"),
        queues,
        traffic(2, "a"),
        {**queues, "seq": 71},
        traffic(11, "b"),
    )
    assert found == []


def test_messages_under_the_limit_pass_and_larger_ones_are_named() -> None:
    """A status or history message of 1 MiB or more is named; a single traffic frame that size
    (alone, or alone in a history) is allowed, as it is never split."""
    check = StreamCheck()
    check.subscribe("r", 0.0)
    assert check.receive(status(), 0.0, size=MESSAGE_LIMIT - 1) == []
    assert check.receive(history(1, more=True), 0.0, size=MESSAGE_LIMIT) == []
    [too_big] = check.receive(history(2, 3), 0.0, size=MESSAGE_LIMIT)
    assert (too_big.rule, too_big.text) == (Rule.SIZE, "a message over 1 MiB")
    assert str(MESSAGE_LIMIT) in too_big.detail
    assert check.receive(traffic(4), 0.0, size=5 * MESSAGE_LIMIT) == []


def test_silence_while_up_is_named_with_its_length() -> None:
    """No traffic frame for longer than 2 x interval + router timeout while the router is up."""
    check = StreamCheck(router_timeout=1.0)
    check.subscribe("r", 0.0)
    assert live(check, status(), history(1)) == []
    assert check.receive(traffic(2, interval=0.5), 1.9) == []
    [silence] = check.receive(traffic(3, interval=0.5), 4.0)
    assert silence.rule is Rule.SILENCE
    assert silence.seconds == pytest.approx(2.1)
    assert check.gap_bound("r") == 2.0


def test_in_cluster_mode_a_takeovers_silence_is_allowed() -> None:
    """A cluster's viewers may wait a lease lifetime plus an interval for a takeover's first
    frame (3 x interval + timeout) without a violation; longer is one."""
    check = StreamCheck(router_timeout=1.0, cluster=True)
    check.subscribe("r", 0.0)
    assert live(check, status(), history(1)) == []
    assert check.receive(traffic(2, interval=0.5), 1.0) == []
    assert check.gap_bound("r") == 2.5
    assert check.receive(traffic(3, interval=0.5), 3.4) == []
    [silence] = check.receive(traffic(4, interval=0.5), 6.0)
    assert silence.rule is Rule.SILENCE


def test_a_router_that_is_down_owes_no_frames() -> None:
    """Silence while the router is down or connecting is no violation; the bound counts again
    from the moment it comes back up."""
    check = StreamCheck(router_timeout=1.0)
    check.subscribe("r", 0.0)
    assert live(check, status("down"), history(1)) == []
    assert check.receive(status("up"), 30.0) == []
    assert check.receive(traffic(2), 32.0) == []
    assert check.idle(34.9) == []
    assert texts(check.idle(35.1)) == [
        "no traffic frame within the gap bound while the router was up"
    ]
    assert check.idle(35.2) == [], "a silence is reported once"


def test_a_silent_connection_is_named_after_the_heartbeat_bound() -> None:
    """Nothing at all for longer than two heartbeat periods: the dashboard would give up."""
    check = StreamCheck()
    check.connect(0.0)
    assert check.receive({"type": "hello", "heartbeat": 5}, 0.0) == []
    assert check.receive({"type": "heartbeat", "ts": 1.0}, 9.9) == []
    [quiet] = check.idle(20.0)
    assert quiet.rule is Rule.SILENCE
    assert quiet.router is None
    assert quiet.seconds == pytest.approx(10.1)


def test_violation_texts_carry_no_numbers() -> None:
    """Texts are fixed wording, so a load test can group them; the numbers go to ``detail``."""
    check = subscribed("r", None, 1)
    found = live(check, traffic(7), traffic(3))
    assert all(not any(c.isdigit() for c in v.text) for v in found)
    assert str(found[0]) == "r: seq gap: frames missing (1 then 7)"


def test_error_and_unknown_messages_are_not_judged() -> None:
    """An error message (the caller's business) and a type a newer gateway may add pass."""
    check = subscribed()
    found = live(check, {"type": "error", "code": "bad_request"}, {"type": "news"}, traffic(1))
    assert found == []


def test_a_message_that_is_not_an_object_is_named() -> None:
    """A JSON array or number is no message of the protocol."""
    assert texts(StreamCheck().receive([1, 2], 0.0)) == ["a message that is not a JSON object"]


def test_in_a_cluster_seq_may_jump_forward_right_after_a_status() -> None:
    """Cluster mode: a takeover's first frame jumps forward after a status; without the status,
    or backwards, or in one process, it is still a broken promise."""
    check = StreamCheck(cluster=True)
    check.subscribe("r", 0.0)
    assert live(check, status(), history(5, 6), traffic(7)) == []
    assert live(check, status("connecting"), status("up"), traffic(1_764_377_000_000)) == []
    assert texts(live(check, traffic(1_764_377_000_005))) == ["seq gap: frames missing"]
    assert texts(live(check, status(), traffic(1_764_377_000_001))) == [
        "seq duplicate or out of order"
    ]
    single = StreamCheck()
    single.subscribe("r", 0.0)
    assert live(single, status(), history(5, 6)) == []
    assert texts(live(single, status(), traffic(900))) == ["seq gap: frames missing"]


def test_in_a_cluster_a_history_may_hold_a_takeover() -> None:
    """Cluster mode: a history (or a resume from ``since``) may jump forward where polling
    changed hands, never backwards."""
    check = StreamCheck(cluster=True)
    check.subscribe("r", 0.0, since=10)
    assert live(check, status(), history(11, 12, 5_000, 5_001), traffic(5_002)) == []
    resumed = StreamCheck(cluster=True)
    resumed.subscribe("r", 0.0, since=10)
    assert live(resumed, status(), history(7_000, 7_001)) == []
    backwards = StreamCheck(cluster=True)
    backwards.subscribe("r", 0.0)
    assert texts(live(backwards, status(), history(5, 4))) == ["history: seq not contiguous"]


def sourced(message: dict[str, Any], source: str) -> dict[str, Any]:
    """``message`` (and its frames) of ``source``."""
    out = {**message, "source": source}
    if "frames" in out:
        out["frames"] = [{**frame, "source": source} for frame in out["frames"]]
    return out


def test_each_source_of_a_router_has_its_own_seq_and_status() -> None:
    """Two subscriptions to one router, interfaces and queues, are judged apart: each has its
    own status, history and seq, interleaved on one connection."""
    check = StreamCheck()
    check.subscribe("r", 0.0)
    found = live(check, status(), history(10, 11))
    check.subscribe("r", 0.0, source="queues")
    found += live(
        check,
        sourced(status(), "queues"),
        sourced(history(500), "queues"),
        traffic(12),
        sourced(traffic(501), "queues"),
        traffic(13),
        sourced(traffic(502), "queues"),
    )
    assert found == []
    assert (check.last_seq("r"), check.last_seq("r", "queues")) == (13, 502)
    assert texts(live(check, sourced(traffic(504), "queues"))) == ["seq gap: frames missing"]
    assert live(check, traffic(14)) == []


def test_a_sources_status_orders_only_its_own_subscription() -> None:
    """The status of one source does not stand in for another's: a queues frame before the
    queues status is out of order, even after the interfaces status came."""
    check = StreamCheck()
    check.subscribe("r", 0.0)
    check.subscribe("r", 0.0, source="queues")
    assert live(check, sourced(status(), "interfaces"), history()) == []
    assert texts(live(check, sourced(history(), "queues"))) == [
        "expected status first after subscribe, got 'history'"
    ]


def test_a_status_naming_no_source_is_every_sources() -> None:
    """A gateway older than sources sends statuses without a source: they answer every
    subscription to the router."""
    check = StreamCheck()
    check.subscribe("r", 0.0)
    check.subscribe("r", 0.0, source="queues")
    found = live(check, {k: v for k, v in status().items() if k != "source"})
    found += live(check, history(1), sourced(history(7), "queues"))
    assert found == []


def test_silence_is_judged_per_source() -> None:
    """A queues stream that is up owes frames even while the interfaces stream of the router
    keeps flowing; a source that is down owes none."""
    check = StreamCheck()
    check.subscribe("r", 0.0)
    check.subscribe("r", 0.0, source="queues")
    check.subscribe("r", 0.0, source="hotspot")
    live(check, sourced(status(), "interfaces"), history())
    live(check, sourced(status(), "queues"), sourced(history(), "queues"))
    live(check, sourced(status("down"), "hotspot"), sourced(history(), "hotspot"))
    assert check.state("r", "hotspot") == "down"
    for t in range(1, 8):
        assert live(check, traffic(t), now=float(t)) == []
    [silence] = check.idle(8.0)
    assert silence.rule is Rule.SILENCE
    assert silence.router == "r"
