"""History messages: a backfill cut into messages under 1 MiB, frames in order, never split."""

from __future__ import annotations

import itertools

import orjson
import pytest

from tests.support.fakes import history_chunks, payload


@pytest.mark.parametrize(
    ("sizes", "limit"),
    [
        ([100] * 50, 1000),
        ([100] * 50, 10_000),
        ([1, 2, 3, 500, 7, 878, 5], 1000),
        ([10] * 3, 122),
        # The largest frames that fit one to a message (999 bytes with "more":false).
        ([889] * 4, 1000),
        ([446] * 4, 1000),
        ([447] * 4, 1000),
    ],
)
def test_history_messages_stay_under_the_limit_in_order(sizes: list[int], limit: int) -> None:
    """A history is cut into messages under the size limit, frames in order, the last marked."""
    frames = [orjson.dumps({"seq": i, "pad": "x" * n}) for i, n in enumerate(sizes)]
    chunks = history_chunks("r", False, frames, limit)
    messages = [orjson.loads(payload(c)) for c in chunks]
    assert [f for m in messages for f in m["frames"]] == [orjson.loads(f) for f in frames]
    assert [m["more"] for m in messages] == [True] * (len(chunks) - 1) + [False]
    for chunk in chunks:
        assert len(payload(chunk)) < limit
    # Each message is as full as the limit allows: the next frame would not have fitted (with
    # a byte to spare for the last message's longer "more":false).
    for this, following in itertools.pairwise(messages):
        encoded = orjson.dumps(this)
        assert len(encoded) + 1 + len(orjson.dumps(following["frames"][0])) >= limit - 1


def test_an_empty_history_is_one_message() -> None:
    """No frames to send still answers the subscribe with one (empty, final) history."""
    (chunk,) = history_chunks("core-1", True, [])
    assert orjson.loads(payload(chunk)) == {
        "type": "history",
        "router": "core-1",
        "source": "interfaces",
        "reset": True,
        "more": False,
        "frames": [],
    }


def test_a_frame_over_the_limit_travels_alone() -> None:
    """A single frame is never split: one too big for the limit gets a message to itself."""
    frames = [b'{"seq":1}', b'{"seq":2,"pad":"' + b"x" * 2000 + b'"}', b'{"seq":3}']
    messages = [orjson.loads(payload(c)) for c in history_chunks("r", False, frames, 1000)]
    assert [[f["seq"] for f in m["frames"]] for m in messages] == [[1], [2], [3]]


def test_history_messages_name_their_source() -> None:
    """A history of a router's queues says so in every message."""
    chunks = history_chunks("isp", False, [b'{"seq":1}'] * 3, 30, source="queues")
    messages = [orjson.loads(payload(c)) for c in chunks]
    assert len(messages) == 3
    assert {m["source"] for m in messages} == {"queues"}
