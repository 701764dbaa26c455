"""The protocol's JSON frames, interface filters and the staleness rule."""

from __future__ import annotations

import os
import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.filters import (
    MAX_GLOB_CHARACTERS,
    MAX_STARS,
    InterfaceFilter,
    literal_glob,
    name_patterns,
)
from gateway.core.frames import filter_traffic, is_stale, traffic_frame
from gateway.core.messages import error_frame, hello_frame, status_frame
from gateway.core.model import InterfaceRate, RouterState

INTERFACE_KEYS = [
    "id",
    "name",
    "type",
    "running",
    "disabled",
    "rx_bps",
    "tx_bps",
    "rx_pps",
    "tx_pps",
]


def rate(
    name: str, interface_id: str = "*1", rx_bps: float | None = 1.0, tx_bps: float | None = 2.0
) -> InterfaceRate:
    return InterfaceRate(interface_id, name, "ether", True, False, rx_bps, tx_bps, 3.0, 4.0)


def names(frame: dict[str, object]) -> list[str]:
    interfaces = frame["interfaces"]
    assert isinstance(interfaces, list)
    return [interface["name"] for interface in interfaces]


def test_traffic_frame_shape_and_key_order() -> None:
    """A traffic frame has the documented keys in the documented order."""
    frame = traffic_frame(
        "core-1",
        1042,
        1764377000.512,
        1.0,
        False,
        [InterfaceRate("*1", "ether1", "ether", True, False, 12345678.0, 2345678.0, 1234.0, 567.0)],
    )
    assert list(frame) == [
        "type",
        "v",
        "router",
        "source",
        "seq",
        "ts",
        "interval",
        "stale",
        "interfaces",
    ]
    assert frame == {
        "type": "traffic",
        "v": 1,
        "router": "core-1",
        "source": "interfaces",
        "seq": 1042,
        "ts": 1764377000.512,
        "interval": 1.0,
        "stale": False,
        "interfaces": [
            {
                "id": "*1",
                "name": "ether1",
                "type": "ether",
                "running": True,
                "disabled": False,
                "rx_bps": 12345678.0,
                "tx_bps": 2345678.0,
                "rx_pps": 1234.0,
                "tx_pps": 567.0,
            }
        ],
    }
    interfaces = frame["interfaces"]
    assert isinstance(interfaces, list)
    assert list(interfaces[0]) == INTERFACE_KEYS


def test_traffic_frame_encodes_in_wire_order() -> None:
    """orjson writes the frame with the keys in protocol order and null for missing rates."""
    frame = traffic_frame("r", 1, 2.0, 1.0, True, [rate("e", rx_bps=None)])
    assert orjson.dumps(frame).startswith(
        b'{"type":"traffic","v":1,"router":"r","source":"interfaces","seq":1,"ts":2.0,"interval":1.0,'
        b'"stale":true,'
        b'"interfaces":[{"id":"*1","name":"e","type":"ether","running":true,"disabled":false,'
        b'"rx_bps":null,"tx_bps":2.0,'
    )


def test_rates_are_rounded_to_one_decimal_and_null_stays_null() -> None:
    """Rates are sent with one decimal; an undefined rate is null."""
    frame = traffic_frame("r", 1, 0.0, 1.0, False, [rate("e", rx_bps=1234.5678, tx_bps=None)])
    interfaces = frame["interfaces"]
    assert isinstance(interfaces, list)
    assert (interfaces[0]["rx_bps"], interfaces[0]["tx_bps"]) == (1234.6, None)


def test_traffic_frame_without_interfaces() -> None:
    """A router with no interfaces still yields a well-formed frame."""
    assert traffic_frame("r", 0, 0.0, 1.0, False, [])["interfaces"] == []


def test_status_frame_shape() -> None:
    """A status frame carries the router, its state, the error and since when."""
    frame = status_frame("core-1", "down", "connection refused", 1764377000.0)
    assert list(frame.items()) == [
        ("type", "status"),
        ("router", "core-1"),
        ("source", "interfaces"),
        ("state", "down"),
        ("error", "connection refused"),
        ("since", 1764377000.0),
    ]
    assert status_frame("core-1", "up", None, 1.0)["error"] is None


def test_hello_frame_shape() -> None:
    """The hello frame lists routers by id and name and announces the heartbeat."""
    frame = hello_frame([("core-1", "Core router"), ("edge", "edge")], 20)
    assert list(frame.items()) == [
        ("type", "hello"),
        ("v", 1),
        (
            "routers",
            [{"id": "core-1", "name": "Core router"}, {"id": "edge", "name": "edge"}],
        ),
        ("heartbeat", 20),
    ]


def test_error_frame_shape() -> None:
    """An error frame carries a code and a message."""
    assert list(error_frame("unknown_router", "no router 'x'").items()) == [
        ("type", "error"),
        ("code", "unknown_router"),
        ("message", "no router 'x'"),
    ]


def test_pppoe_glob_matches_angle_brackets_literally() -> None:
    """The glob <pppoe-*> selects every PPPoE customer interface and nothing else."""
    flt = InterfaceFilter.of(["<pppoe-*>"])
    assert flt.matches("<pppoe-alice>")
    assert flt.matches("<pppoe-bob-42>")
    assert not flt.matches("pppoe-alice")
    assert not flt.matches("ether1")


def test_globs_are_case_sensitive_and_support_classes() -> None:
    """Globs follow fnmatch case-sensitively: ether[12] matches ether1, not Ether1."""
    flt = InterfaceFilter.of(["ether[12]", "sfp-?"])
    assert flt.matches("ether1")
    assert flt.matches("sfp-1")
    assert not flt.matches("Ether1")
    assert not flt.matches("ether3")
    assert not flt.matches("sfp-10")


def test_literal_bracket_needs_escaping() -> None:
    """A literal [ in a name is matched with [[], as in fnmatch."""
    assert InterfaceFilter.of(["vlan[[]10]"]).matches("vlan[10]")
    assert not InterfaceFilter.of(["vlan[10]"]).matches("vlan[10]")


def test_all_and_empty_filters() -> None:
    """all() lets every interface through; an empty glob list lets none through."""
    assert InterfaceFilter.all().matches("anything")
    assert InterfaceFilter.all().is_all
    assert not InterfaceFilter.of([]).matches("anything")
    assert not InterfaceFilter.of([]).is_all


def test_intersection_narrows_a_token_filter() -> None:
    """A subscription's globs narrow a token's globs: only names passing both are shown."""
    token = InterfaceFilter.of(["<pppoe-*>", "ether1"])
    subscription = InterfaceFilter.of(["<pppoe-alice>", "ether2"])
    both = token.intersect(subscription)
    assert both.matches("<pppoe-alice>")
    assert not both.matches("<pppoe-bob>")
    assert not both.matches("ether1")
    assert not both.matches("ether2")


def test_intersection_with_all_is_identity() -> None:
    """Narrowing by everything, or by itself, leaves a filter unchanged."""
    flt = InterfaceFilter.of(["ether*"])
    assert flt.intersect(InterfaceFilter.all()) == flt
    assert InterfaceFilter.all().intersect(flt) == flt
    assert flt.intersect(flt) == flt


def test_equal_filters_hash_equal() -> None:
    """Filters with the same globs in any order or repetition are one dict key."""
    a = InterfaceFilter.of(["ether1", "<pppoe-*>"])
    b = InterfaceFilter.of(["<pppoe-*>", "ether1", "ether1"])
    assert a == b
    assert hash(a) == hash(b)
    assert len({a: 1, b: 2}) == 1
    token = InterfaceFilter.of(["<pppoe-alice>"])
    assert token.intersect(InterfaceFilter.of(["<pppoe-*>"])) == token
    assert InterfaceFilter.of(["x"]).intersect(InterfaceFilter.of(["y"])) == InterfaceFilter.of(
        ["y"]
    ).intersect(InterfaceFilter.of(["x"]))


def test_filter_traffic_keeps_matching_interfaces_only() -> None:
    """A filtered frame keeps its keys and order and only the matching interfaces."""
    frame = traffic_frame(
        "isp", 7, 1.0, 1.0, False, [rate("ether1"), rate("<pppoe-alice>", "*2"), rate("x", "*3")]
    )
    filtered = filter_traffic(frame, InterfaceFilter.of(["<pppoe-*>", "ether1"]))
    assert list(filtered) == list(frame)
    assert names(filtered) == ["ether1", "<pppoe-alice>"]
    assert names(frame) == ["ether1", "<pppoe-alice>", "x"]
    assert filtered is not frame


def test_filter_traffic_with_nothing_matching() -> None:
    """A viewer whose filter matches nothing gets frames with an empty interface list."""
    frame = traffic_frame("isp", 7, 1.0, 1.0, False, [rate("ether1")])
    assert names(filter_traffic(frame, InterfaceFilter.of(["<pppoe-*>"]))) == []


@pytest.mark.parametrize(
    ("state", "age", "stale"),
    [
        ("up", 0.0, False),
        ("up", 5.0, False),
        ("up", 5.001, True),
        ("down", 0.0, True),
        ("connecting", 0.0, True),
        ("idle", 0.0, True),
    ],
)
def test_staleness_rule(state: RouterState, age: float, stale: bool) -> None:
    """A frame is stale when the router is not up or it is older than 2 x interval + timeout."""
    assert is_stale(state, 100.0, 100.0 + age, 1.0, 3.0) is stale


glob_text = st.text(alphabet="ab*?<>-", max_size=4)
glob_lists = st.lists(glob_text, max_size=3)


@given(first=glob_lists, second=glob_lists, third=glob_lists, name=st.text("ab<>-", max_size=5))
def test_intersection_means_both_pass(
    first: list[str], second: list[str], third: list[str], name: str
) -> None:
    """However filters are combined, a name passes exactly when it passes each of them."""
    a, b, c = (InterfaceFilter.of(globs) for globs in (first, second, third))
    combined = a.intersect(b).intersect(c)
    assert combined.matches(name) == (a.matches(name) and b.matches(name) and c.matches(name))
    assert combined == c.intersect(b.intersect(a))
    assert hash(combined) == hash(c.intersect(a).intersect(b))


# Every character RouterOS lets an interface name hold that means something to a glob or a
# shell, plus quotes, backslashes and non-ASCII text.
TRICKY_NAMES = [
    "ether1 [WAN]",
    "ether1 W",
    "ether1 [[]WAN]",
    "vlan[10]",
    "vlan1",
    "a*b",
    "aXb",
    "a?b",
    "a[!x]b",
    "a[b",
    "]",
    "[]",
    "back\\slash",
    "<pppoe-a[1]>",
    "<pppoe-a1>",
    '"quoted"',
    "it's",
    "ether-café",
    "ether-東京",
    " x ",
    "*",
    "?",
    "[*]",
]


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_an_exact_name_matches_itself_and_nothing_else(name: str) -> None:
    """{"exact": name} selects that interface only, whatever glob characters its name holds."""
    flt = InterfaceFilter.of(name_patterns([{"exact": name}]))
    assert [other for other in TRICKY_NAMES if flt.matches(other)] == [name]


def test_a_bracketed_name_used_as_a_glob_matches_another_interface() -> None:
    """The fault exact names fix: ether1 [WAN] as a glob selects ether1 W, not itself."""
    glob = InterfaceFilter.of(name_patterns(["ether1 [WAN]"]))
    assert glob.matches("ether1 W")
    assert not glob.matches("ether1 [WAN]")


@given(st.text(min_size=1, max_size=12), st.text(max_size=12))
def test_literal_glob_matches_exactly_one_name(name: str, other: str) -> None:
    """For any name, its literal glob matches the name and no different text."""
    flt = InterfaceFilter.of([literal_glob(name)])
    assert flt.matches(name)
    assert flt.matches(other) == (other == name)


def test_globs_and_exact_names_mix_in_one_list() -> None:
    """A list may hold typed patterns and picked names side by side; a name passes either."""
    flt = InterfaceFilter.of(name_patterns(["<pppoe-*>", {"exact": "ether1 [WAN]"}]))
    assert flt.matches("<pppoe-alice>")
    assert flt.matches("ether1 [WAN]")
    assert not flt.matches("ether1 W")


def test_exact_entries_share_a_filter_with_the_same_plain_glob() -> None:
    """An exact name without glob characters is the same filter as the name written as a glob,
    and narrowing an exact token by a wider glob keeps the token's filter (one encoding)."""
    assert InterfaceFilter.of(name_patterns([{"exact": "ether1"}])) == InterfaceFilter.of(
        ["ether1"]
    )
    token = InterfaceFilter.of(name_patterns([{"exact": "<pppoe-a[1]>"}]))
    assert token.intersect(InterfaceFilter.of(["<pppoe-*>"])) == token
    assert token.intersect(token) == token


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ("ether1", "expected a list"),
        ([1], "got 1"),
        ([""], "non-empty"),
        ([{"exact": ""}], "non-empty"),
        ([{"exact": 5}], "exact"),
        ([{"exact": "a", "glob": "b"}], "exact"),
        ([{"name": "a"}], "exact"),
        (["x" * 300], "at most 256 characters"),
        (["a"] * 300, "at most 256 entries"),
    ],
)
def test_bad_name_lists_are_refused_saying_why(entries: object, reason: str) -> None:
    """A list that is not globs and {"exact": name} entries is refused with the reason."""
    with pytest.raises(ValueError, match=reason):
        name_patterns(entries, max_entries=256, max_length=256)


# -- what a filter may cost ---------------------------------------------------------------------

# The subscribe that stalled the event loop: 256 globs of 256 characters, ~120 "*" each.
STALLING: list[object] = [("*" + "a*c*h" * 60)[:256] for _ in range(256)]


def test_a_glob_with_too_many_stars_is_refused_naming_the_limit() -> None:
    """A glob with more "*" than the limit is refused at once, saying what the limit is."""
    started = time.perf_counter()
    with pytest.raises(ValueError, match=f'at most {MAX_STARS} "\\*"'):
        name_patterns(STALLING, max_entries=256, max_length=256)
    assert time.perf_counter() - started < 0.05
    assert name_patterns(["*a*b*c*d"]) == ("*a*b*c*d",)
    with pytest.raises(ValueError, match=f"at most {MAX_STARS}"):
        name_patterns(["*a*b*c*d*"])


def test_stars_inside_a_class_and_in_exact_names_do_not_count() -> None:
    """A literal "*" (in a class, or in an exact name) is no wildcard and is never refused."""
    assert name_patterns(["[*][*][*][*][*][*]"]) == ("[*][*][*][*][*][*]",)
    assert name_patterns([{"exact": "*" * 40}]) == (literal_glob("*" * 40),)


def test_globs_of_one_list_are_limited_together_and_exact_names_are_not() -> None:
    """Globs may hold MAX_GLOB_CHARACTERS characters together; exact names are free."""
    fits = ["x" * 63 + "*"] * (MAX_GLOB_CHARACTERS // 64)
    assert len(name_patterns(fits)) == len(fits)
    with pytest.raises(ValueError, match=f"at most {MAX_GLOB_CHARACTERS} characters together"):
        name_patterns([*fits, "y*"])
    names = [{"exact": f"<pppoe-{n:0240d}>"} for n in range(256)]
    assert len(name_patterns(names, max_entries=256, max_length=256)) == 256


def _worst_case(seed: int) -> list[object]:
    """A list at every limit: 16 globs of 16 characters with MAX_STARS "*" each (distinct per
    ``seed``, so nothing is cached), and 240 exact names of 256 characters."""
    globs: list[object] = [
        f"{seed:02d}{n:02d}" + "*ab" * MAX_STARS for n in range(MAX_GLOB_CHARACTERS // 16)
    ]
    names: list[object] = [{"exact": f"{seed}-{n}-" + "n" * 240} for n in range(240)]
    return globs + names


def test_a_filter_at_the_limits_is_cheap_to_build_and_to_match() -> None:
    """Building a never-seen filter at every limit stays in the low milliseconds, building it
    again costs next to nothing, and matching a long name is cheap."""
    unit = float(os.environ.get("GATEWAY_TEST_TIME_UNIT", "1"))
    build = []
    for seed in range(5):
        entries = _worst_case(seed)
        started = time.perf_counter()
        flt = InterfaceFilter.of(name_patterns(entries, max_entries=256, max_length=256))
        build.append(time.perf_counter() - started)
    assert min(build) < 0.005 * unit, build
    started = time.perf_counter()
    again = InterfaceFilter.of(name_patterns(entries, max_entries=256, max_length=256))
    assert time.perf_counter() - started < 0.002 * unit
    assert again == flt
    names = ["ab" * 127 + str(n) for n in range(300)]
    started = time.perf_counter()
    for name in names:
        flt.matches(name)
    assert (time.perf_counter() - started) / len(names) < 50e-6 * unit


def test_a_repeated_filter_shares_its_compiled_form() -> None:
    """The same clause sent again (or by another viewer) is not compiled again."""
    first = InterfaceFilter.of(["<pppoe-*>", "ether*"])
    second = InterfaceFilter.of(["ether*", "<pppoe-*>", "ether*"])
    assert first == second
    assert first._matchers[0] is second._matchers[0]


@pytest.mark.parametrize("name", ["<pppoe-alice>", "ether1 [WAN]", "a*b", "", "x" * 300])
def test_a_remembered_verdict_equals_a_fresh_one(name: str) -> None:
    """Matching a name twice (the second time from memory) gives the same answer as fnmatch."""
    import fnmatch

    globs = ["<pppoe-*>", "ether? [[]*", "a[*]b", "*x*x*x*x"]
    flt = InterfaceFilter.of(globs)
    expected = any(fnmatch.fnmatchcase(name, glob) for glob in globs)
    assert flt.matches(name) is expected
    assert flt.matches(name) is expected
