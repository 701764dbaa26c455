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
from gateway.core.model import Sample, parse_interface_row
from gateway.core.rates import compute_rates
from gateway.core.rows import Layout, encode, row_names
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
