"""Rows encoded once and spliced per filter give exactly the frames filtering then encoding gave."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.filters import InterfaceFilter, literal_glob
from gateway.core.frames import filter_traffic, traffic_frame
from gateway.core.model import InterfaceRate, Sample, parse_interface_row
from gateway.core.rates import compute_rates
from gateway.core.rows import Layout, Rows, encode, row_names
from gateway.core.sessions import SessionBook
from gateway.core.sources import PPP_SERVICES, PppSession, ppp_interface
from gateway.emulator.device import Device, sized_config

# Names as routers send them, and the characters that make globs and JSON interesting.
NAME = st.text(
    alphabet=st.sampled_from(list("ab<>-*?[]!\\\"' éж\u2028\x00/"))
    | st.characters(exclude_categories=["Cs"]),
    min_size=0,
    max_size=8,
)
VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)


@st.composite
def rows(draw: st.DrawFn, names: list[str]) -> list[object]:
    """Interface rows named from ``names`` (repeats allowed), with other fields around them,
    now and then a row that is not an object (which no filter but "all" lets through)."""
    out: list[object] = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 15)) == 0:
            out.append(draw(st.one_of(VALUE, st.lists(VALUE, max_size=2))))
            continue
        row: dict[str, object] = draw(st.dictionaries(st.text(max_size=4), VALUE, max_size=3))
        row["name"] = draw(st.sampled_from(names)) if names else draw(NAME)
        row.update(draw(st.dictionaries(st.text(max_size=4), VALUE, max_size=2)))
        out.append(row)
    return out


@st.composite
def frames(draw: st.DrawFn) -> tuple[dict[str, object], list[str]]:
    """A traffic frame with its row list anywhere among other keys, and its rows' names."""
    names = draw(st.lists(NAME, min_size=1, max_size=6))
    before = draw(st.dictionaries(st.text(max_size=5), VALUE, max_size=4))
    after = draw(st.dictionaries(st.text(max_size=5), VALUE, max_size=3))
    frame: dict[str, object] = {k: v for k, v in before.items() if k != "interfaces"}
    frame["interfaces"] = draw(rows(names))
    frame.update({k: v for k, v in after.items() if k not in frame})
    return frame, names


@st.composite
def filters(draw: st.DrawFn, names: list[str]) -> InterfaceFilter:
    """Filters as viewers make them: exact names, globs built from the names, intersections."""

    def clause() -> list[str]:
        globs = []
        for _ in range(draw(st.integers(0, 3))):
            name = draw(st.sampled_from(names))
            kind = draw(st.integers(0, 3))
            if kind == 0:
                globs.append(literal_glob(name))
            elif kind == 1:
                globs.append(literal_glob(name[: len(name) // 2]) + "*")
            elif kind == 2:
                globs.append("*" + literal_glob(name[len(name) // 2 :]))
            else:
                globs.append(draw(st.sampled_from(["*", "?", "a*", "<pppoe-*>", "[ab]*", "x"])))
        return globs

    flt = InterfaceFilter.all()
    for _ in range(draw(st.integers(0, 3))):
        flt = flt.intersect(InterfaceFilter.of(clause()))
    return flt


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_spliced_frame_is_byte_for_byte_the_filtered_frame(data: st.DataObject) -> None:
    """Whatever the frame and filter, a viewer gets exactly the bytes filter-then-encode gave."""
    frame, names = data.draw(frames())
    rows_ = encode(frame)
    assert rows_.text == orjson.dumps(frame)
    assert len(rows_) == len(frame["interfaces"])  # type: ignore[arg-type]
    for _ in range(3):
        flt = data.draw(filters(names))
        spliced = rows_.splice(rows_.layout.select(flt))
        # Viewers of every row get the frame as it is (the topic never filters for them).
        assert spliced == orjson.dumps(frame if flt.is_all else filter_traffic(frame, flt))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_row_list_splices_the_same_way(data: st.DataObject) -> None:
    """A frame whose rows sit under another key (another source) splices just as exactly."""
    frame, names = data.draw(frames())
    other = {("queues" if k == "interfaces" else k): v for k, v in frame.items()}
    flt = data.draw(filters(names))
    rows_ = encode(other, rows_key="queues")
    kept = [
        row
        for row in frame["interfaces"]  # type: ignore[attr-defined]
        if flt.is_all or (isinstance(row, dict) and flt.matches(str(row["name"])))
    ]
    expected = {k: (kept if k == "queues" else v) for k, v in other.items()}
    assert rows_.splice(rows_.layout.select(flt)) == orjson.dumps(expected)


@given(st.lists(st.one_of(st.none(), st.integers(-1000, 1000), st.text(max_size=3)), max_size=8))
def test_rows_with_no_name_pass_only_the_every_row_filter(names: list[object]) -> None:
    """A row without a name (or not an object) reaches only viewers of every row."""
    rows: list[object] = [{"id": i} if n is None else n for i, n in enumerate(names)]
    frame: dict[str, object] = {"type": "traffic", "interfaces": rows}
    rows_ = encode(frame)
    assert row_names(rows) == (None,) * len(names)
    for flt in (InterfaceFilter.of(["*"]), InterfaceFilter.of([])):
        spliced = orjson.loads(rows_.splice(rows_.layout.select(flt)))
        assert spliced["interfaces"] == []
    everything = rows_.layout.select(InterfaceFilter.all())
    assert rows_.splice(everything) == orjson.dumps(frame)


def router_frame(
    device: Device, previous: Sample | None, seq: int
) -> tuple[dict[str, Any], Sample]:
    device.advance()
    parsed = (parse_interface_row(device.interface_row(i)) for i in device.iter_interfaces())
    sample = Sample(time.monotonic() + seq, tuple(s for s in parsed if s is not None))
    rates = compute_rates(previous, sample)
    return traffic_frame("isp", seq, 1.7e9 + seq, 1.0, False, rates), sample


def test_real_router_frames_splice_exactly_for_each_customer() -> None:
    """An ISP router's frames, cut per customer and per glob, equal the old per-filter encodes."""
    device = Device(sized_config(8, 120))
    frame, sample = router_frame(device, None, 1)
    frame, _ = router_frame(device, sample, 2)
    rows_ = encode(frame)
    names = [row["name"] for row in frame["interfaces"]]
    checks = [InterfaceFilter.of([name]) for name in names]
    checks += [InterfaceFilter.of(g) for g in (["<pppoe-*>"], ["ether*", "sfp*"], ["*5*"], [])]
    checks.append(InterfaceFilter.of(["<pppoe-*>"]).intersect(InterfaceFilter.of(["*1>"])))
    for flt in checks:
        assert rows_.splice(rows_.layout.select(flt)) == orjson.dumps(filter_traffic(frame, flt))


def test_a_layout_is_shared_until_the_names_change() -> None:
    """Frames with the same interface names share one layout (and its selections); a customer
    who comes or goes makes a new one, where the same filter selects the new positions."""
    first = encode({"interfaces": [{"name": "a"}, {"name": "<pppoe-x>"}, {"name": "b"}]})
    again = encode(
        {"interfaces": [{"name": "a"}, {"name": "<pppoe-x>"}, {"name": "b"}]}, first.layout
    )
    assert again.layout is first.layout
    customer = InterfaceFilter.of(["<pppoe-x>"])
    assert again.layout.select(customer) is first.layout.select(customer)
    churned = encode({"interfaces": [{"name": "<pppoe-y>"}, {"name": "<pppoe-x>"}]}, first.layout)
    assert churned.layout is not first.layout
    assert churned.layout.select(customer).positions == (1,)
    assert orjson.loads(churned.splice(churned.layout.select(customer)))["interfaces"] == [
        {"name": "<pppoe-x>"}
    ]


def test_filters_selecting_the_same_rows_share_one_selection() -> None:
    """Two distinct filters that let the same rows through share one selection object."""
    layout = Layout(("ether1", "<pppoe-alice>", "<pppoe-bob>"))
    exact = layout.select(InterfaceFilter.of(["<pppoe-alice>"]))
    glob = layout.select(InterfaceFilter.of(["<pppoe-a*>"]))
    assert exact is glob
    assert exact.positions == (1,)


def test_a_filter_of_names_does_not_match_every_interface(monkeypatch: pytest.MonkeyPatch) -> None:
    """A customer's exact-name filter is looked up, not matched against each interface."""
    names = tuple(f"<pppoe-user{i:04}>" for i in range(2000))
    layout = Layout(names)
    matched: list[str] = []
    original = InterfaceFilter.matches

    def counting(self: InterfaceFilter, name: str) -> bool:
        matched.append(name)
        return original(self, name)

    monkeypatch.setattr(InterfaceFilter, "matches", counting)
    token = InterfaceFilter.of(["<pppoe-user1234>"])
    assert layout.select(token).positions == (1234,)
    pair = InterfaceFilter.of(["<pppoe-user1234>", "<pppoe-user0007>"])
    narrowed = pair.intersect(InterfaceFilter.of(["*4>"]))
    assert len(narrowed.clauses) == 2
    assert layout.select(narrowed).positions == (1234,)
    assert sorted(matched) == ["<pppoe-user0007>", "<pppoe-user1234>"]
    assert layout.select(InterfaceFilter.of(["<pppoe-user12*>"])).positions == tuple(
        range(1200, 1300)
    )
    assert len(matched) > 1000  # a glob is matched name by name


def test_repeated_names_are_all_selected() -> None:
    """Rows that share a name are all let through by a filter of that name, in order."""
    frame: dict[str, object] = {
        "interfaces": [{"name": "x", "n": 1}, {"name": "y"}, {"name": "x", "n": 2}]
    }
    rows_ = encode(frame)
    flt = InterfaceFilter.of(["x"])
    assert rows_.splice(rows_.layout.select(flt)) == orjson.dumps(filter_traffic(frame, flt))


def test_a_frame_without_a_row_list_is_refused() -> None:
    """A message with no row list is not a traffic frame: the error says which key is missing."""
    with pytest.raises(TypeError, match="'interfaces' is not a list"):
        encode({"type": "traffic", "interfaces": {"name": "x"}})


# -- where each row lies: found in the frame's one encoding ------------------------------------

# Text that reads like the boundary between two rows ("},{" then a key), or like part of one.
BOUNDARY_TEXT = st.sampled_from(['},{"', '"},{"name":"', "},{", '\\"', "}", "{", ",", ""])
# Row values that are not plain text: lists of objects (their encoding holds "},{" then a
# key, as between two rows), objects, empty ones.
NESTED = st.one_of(
    st.lists(st.dictionaries(st.sampled_from(["name", "", "a"]), VALUE, max_size=2), max_size=3),
    st.dictionaries(st.sampled_from(["name", "b"]), VALUE | BOUNDARY_TEXT, max_size=2),
)


@st.composite
def odd_rows(draw: st.DrawFn) -> list[object]:
    """Rows as anything may hold them: objects with text like a row boundary or nested objects,
    empty objects, and now and then a row that is not an object (a list of objects too)."""
    out: list[object] = []
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            out.append(draw(VALUE | NESTED))
        elif kind == 1:
            out.append({})
        else:
            row: dict[str, object] = {"name": draw(NAME | BOUNDARY_TEXT)}
            row.update(draw(st.dictionaries(st.sampled_from(["id", "x", "name"]), VALUE | NESTED)))
            out.append(row)
    return out


def each_row(rows_: Rows) -> list[bytes]:
    """Every row's bytes as ``rows_`` says they lie in the frame's encoding."""
    text, starts = rows_.text, rows_.starts
    return [text[starts[i] : starts[i + 1] - 1] for i in range(len(rows_))]


@settings(max_examples=500, deadline=None)
@given(odd_rows(), st.booleans())
def test_each_row_is_found_where_its_own_encoding_lies(rows: list[object], last: bool) -> None:
    """Whatever the rows hold, each row a viewer is sent is exactly that row's own encoding."""
    frame: dict[str, object] = {"type": "traffic", "interfaces": rows}
    if not last:
        frame["more"] = [{"a": 1}, {"b": 2}]
    rows_ = encode(frame)
    assert rows_.text == orjson.dumps(frame)
    assert each_row(rows_) == [orjson.dumps(row) for row in rows]
    assert rows_.text[: rows_.starts[0]] == orjson.dumps(frame).split(b'"interfaces":[')[0] + (
        b'"interfaces":['
    )
    assert rows_.text[rows_.tail :] == (b"]}" if last else b'],"more":[{"a":1},{"b":2}]}')


def test_rows_holding_what_reads_like_a_row_boundary_are_found_exactly() -> None:
    """Rows holding what encodes as "},{" and a quote (a list of objects, a text ending in "},{")
    are not cut there."""
    frame: dict[str, object] = {
        "interfaces": [
            {"name": "a", "x": [{"name": "b"}, {"name": "c"}]},
            {"name": '},{"name":"d'},
            {"name": "e", "comment": "},{"},
            {"name": "f", "x": [{}, {"": 1}]},
        ]
    }
    rows_ = encode(frame)
    assert each_row(rows_) == [orjson.dumps(row) for row in frame["interfaces"]]  # type: ignore[attr-defined]
    for name in ("a", "b", '},{"name":"d', "e", "f"):
        flt = InterfaceFilter.of([literal_glob(name)])
        assert rows_.splice(rows_.layout.select(flt)) == orjson.dumps(filter_traffic(frame, flt))
    # Rows that are not objects: a boundary inside one, none between them.
    odd: list[object] = [[{"name": "a"}, {"name": "b"}], 5]
    assert each_row(encode({"interfaces": odd})) == [orjson.dumps(row) for row in odd]


# Interface names as routers send them: PPP server interfaces of customers (some online, some
# not), ports, names that are not ASCII or hold quotes, backslashes and text like JSON.
USER = st.text(alphabet=st.sampled_from(list('ab1-_.@ "\\},{éжü\u2028')), min_size=1, max_size=6)
PORT = st.text(alphabet=st.sampled_from(list('ether1-[] "\\},{éж\x00')), min_size=1, max_size=8)
RATE = st.none() | st.floats(0, 1e13, allow_nan=False)


@st.composite
def ppp_ticks(draw: st.DrawFn) -> tuple[list[InterfaceRate], list[PppSession]]:
    """One poll's rates of a router with PPP customers, ports and comments, and the PPP
    sessions read from it (not every customer has one; some sessions have no interface)."""
    rates: list[InterfaceRate] = []
    sessions: list[PppSession] = []
    for i in range(draw(st.integers(0, 12))):
        ppp = draw(st.booleans())
        service = draw(st.sampled_from(sorted(PPP_SERVICES)))
        user = draw(USER)
        name = ppp_interface(service, user) if ppp else draw(PORT)
        assert name is not None
        comment = draw(st.none() | st.text(max_size=5) | BOUNDARY_TEXT)
        rx_bps, tx_bps, rx_pps, tx_pps = (draw(RATE) for _ in range(4))
        kind = "pppoe-in" if ppp else draw(st.sampled_from(["ether", "vlan", "bridge", "ж"]))
        running, disabled = draw(st.booleans()), draw(st.booleans())
        rates.append(
            InterfaceRate(
                f"*{i:X}", name, kind, running, disabled, rx_bps, tx_bps, rx_pps, tx_pps, comment
            )
        )
        if ppp and draw(st.booleans()):
            caller = draw(st.none() | st.text(max_size=4))
            address = draw(st.none() | st.sampled_from(["100.64.0.2", "10.0.0.1", ""]))
            uptime = draw(st.none() | st.integers(0, 10**7))
            sessions.append(PppSession(f"*S{i}", user, service, caller, address, uptime))
    return rates, sessions


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ppp_ticks())
def test_frames_with_ppp_sessions_comments_and_odd_names_are_sent_exactly(
    tick: tuple[list[InterfaceRate], list[PppSession]],
) -> None:
    """The poller's frames (PPP rows with and without a session, comments, names that are not
    ASCII or read like JSON) reach viewers of every row and each customer byte for byte as
    encoding the frame, or the customer's share of it, would give."""
    rates, sessions = tick
    book = SessionBook()
    book.update(sessions, 0.0, 1.7e9)
    frame = traffic_frame("isp", 7, 1.7e9, 1.0, False, rates, book.view())
    rows_ = encode(frame)
    assert rows_.text == orjson.dumps(frame)
    assert each_row(rows_) == [orjson.dumps(row) for row in frame["interfaces"]]  # type: ignore[attr-defined]
    joined = [row for row in frame["interfaces"] if "session" in row]  # type: ignore[attr-defined]
    assert len(joined) <= len(sessions)
    for rate in rates:
        flt = InterfaceFilter.of([literal_glob(rate.name)])
        assert rows_.splice(rows_.layout.select(flt)) == orjson.dumps(filter_traffic(frame, flt))
