"""Origins: one normal form for the allowlist and the header, and who may open a websocket."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.once import FirstSeen
from gateway.core.origins import OriginError, judge_origin, normalise_origin


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://noc.example.net", "https://noc.example.net"),
        ("https://noc.example.net:443", "https://noc.example.net"),
        ("HTTPS://NOC.Example.NET", "https://noc.example.net"),
        ("https://noc.example.net/", "https://noc.example.net"),
        ("https://noc.example.net.", "https://noc.example.net"),
        ("https://noc.example.net:", "https://noc.example.net"),
        ("https://noc.example.net:80", "https://noc.example.net:80"),
        ("http://noc.example.net:80", "http://noc.example.net"),
        ("http://noc.example.net:443", "http://noc.example.net:443"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("ws://noc.example.net:80", "ws://noc.example.net"),
        ("wss://noc.example.net:443", "wss://noc.example.net"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("http://[0:0::1]:8080", "http://[::1]:8080"),
        ("http://[2001:DB8::A]", "http://[2001:db8::a]"),
        ("https://Bücher.example", "https://xn--bcher-kva.example"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ("https://faß.de", "https://xn--fa-hia.de"),  # UTS 46 non-transitional, as browsers
        ("http://my_host.lan:8080", "http://my_host.lan:8080"),
    ],
)
def test_origins_take_the_form_browsers_send(text: str, expected: str) -> None:
    """Any spelling of an origin becomes the one a browser puts in its Origin header."""
    assert normalise_origin(text) == expected
    assert normalise_origin(expected) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("null", "opaque origin"),
        ("NULL", "opaque origin"),
        ("noc.example.net", "scheme://host[:port]"),
        ("https:noc.example.net", "scheme://host[:port]"),
        ("https://noc.example.net/dashboard", "no path"),
        ("https://noc.example.net?x=1", "query"),
        ("https://noc.example.net#top", "fragment"),
        ("https://user@noc.example.net", "user name"),
        (" https://noc.example.net", "scheme://host[:port]"),
        ("ftp://noc.example.net", "http or https"),
        ("chrome-extension://abcdef", "http or https"),
        ("https://", "host name or address"),
        ("https://noc.example.net:0", "port from 1 to 65535"),
        ("https://noc.example.net:65536", "port from 1 to 65535"),
        ("https://noc.example.net:+443", "port from 1 to 65535"),
        ("https://noc.example.net:44_3", "port from 1 to 65535"),
        ("https://noc example.net", "host name of letters"),
        ("https://noc..example.net", "host name of letters"),
        ("https://noc%2eexample.net", "host name of letters"),
        ("http://[::1", "scheme://host[:port]"),
        ("http://[not-ipv6]", "IPv6 address"),
        ("http://[fe80::1%25eth0]", "IPv6 zone"),
        ("http://999.0.0.1", "IPv4 address"),
        ("http://example.123", "IPv4 address"),
        ("https://" + "a" * 250 + ".net", "at most 253 characters"),
    ],
)
def test_what_is_not_an_origin_is_named(text: str, problem: str) -> None:
    """Text that is not an origin is refused with the reason, without repeating the text."""
    with pytest.raises(OriginError) as caught:
        normalise_origin(text)
    assert problem in str(caught.value)


@given(
    scheme=st.sampled_from(["http", "HTTPS", "ws", "Wss"]),
    host=st.from_regex(r"[A-Za-z0-9-]{1,12}(\.[A-Za-z0-9-]{1,12}){0,3}\.?", fullmatch=True),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    slash=st.booleans(),
)
def test_normal_form_is_stable(scheme: str, host: str, port: int | None, slash: bool) -> None:
    """Normalising twice changes nothing, so config and header meet in one form."""
    text = f"{scheme}://{host}" + (f":{port}" if port else "") + ("/" if slash else "")
    try:
        once = normalise_origin(text)
    except OriginError:
        return  # e.g. a name ending in a number label that is not an IPv4 address
    assert normalise_origin(once) == once
    assert once == once.lower()
    assert not (once.startswith(("http://", "ws://")) and once.endswith(":80"))
    assert not (once.startswith(("https://", "wss://")) and once.endswith(":443"))


ALLOWED = ("https://noc.example.net", "http://dash.example.net:8080")


@pytest.mark.parametrize(
    "origin",
    ["https://noc.example.net", "https://NOC.example.net", "http://dash.example.net:8080"],
)
def test_listed_origin_is_allowed(origin: str) -> None:
    """A page whose origin is listed may connect, however the header spells it."""
    assert judge_origin(origin, "gateway.internal:8080", ALLOWED) is None


@pytest.mark.parametrize(
    "origin",
    [
        "http://noc.example.net",  # another scheme is another origin
        "https://noc.example.net:8443",  # so is another port
        "https://evil.example.com",
        "https://noc.example.net.evil.example.com",
    ],
)
def test_unlisted_origin_is_refused_naming_the_setting(origin: str) -> None:
    """An unlisted origin is refused; the reason names server.allowed_origins and its value."""
    refusal = judge_origin(origin, "noc.example.net", ALLOWED)
    assert refusal is not None
    assert refusal.origin == normalise_origin(origin)
    assert "server.allowed_origins" in refusal.reason
    assert "https://noc.example.net, http://dash.example.net:8080" in refusal.reason


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://noc.example.net", "noc.example.net"),
        ("https://noc.example.net", "noc.example.net:443"),  # a proxy that sends the port
        ("https://noc.example.net", "NOC.example.net."),
        ("http://noc.example.net", "noc.example.net:80"),
        ("http://127.0.0.1:8080", "127.0.0.1:8080"),
        ("http://[::1]:8080", "[0::1]:8080"),
    ],
)
def test_same_origin_compares_with_the_host_header(origin: str, host: str) -> None:
    """With no allowlist, the page's own site may connect, Host read in the Origin's scheme."""
    assert judge_origin(origin, host, ()) is None


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://noc.example.net", "noc.example.net:443"),
        ("https://noc.example.net", "noc.example.net:80"),
        ("https://noc.example.net", "noc.example.net:8443"),
        ("http://127.0.0.1:8081", "127.0.0.1:8080"),
        ("https://evil.example.com", "noc.example.net"),
        ("https://noc.example.net", None),
        ("https://noc.example.net", "noc.example.net/path"),
    ],
)
def test_other_sites_are_refused_in_same_origin_mode(origin: str, host: str | None) -> None:
    """With no allowlist, another host or port than the request's is refused, saying so."""
    refusal = judge_origin(origin, host, ())
    assert refusal is not None
    assert "server.allowed_origins is empty" in refusal.reason


@pytest.mark.parametrize("origin", ["null", "file://", "not an origin", "x" * 5000])
def test_unreadable_origin_is_refused_and_shown_bounded(origin: str) -> None:
    """A header that is no origin is refused; the log shows it quoted and cut to 200 chars."""
    for allowed in ((), ALLOWED):
        refusal = judge_origin(origin, "noc.example.net", allowed)
        assert refusal is not None
        assert refusal.origin.startswith('"')
        assert len(refusal.origin) <= 200 + 5
        assert "no setting can allow it" in refusal.reason


def test_control_characters_cannot_forge_log_lines() -> None:
    """An Origin with line breaks or escapes is shown escaped, on one line."""
    refusal = judge_origin("https://a\r\nFAKE LOG LINE\x1b[31m", None, ())
    assert refusal is not None
    assert "\n" not in refusal.origin
    assert "\r" not in refusal.origin
    assert "\x1b" not in refusal.origin


def test_first_seen_reports_each_key_once_in_bounded_memory() -> None:
    """Each key is new once; past the limit nothing more is remembered or reported."""
    seen: FirstSeen[str] = FirstSeen(3)
    assert [seen.first(k) for k in ("a", "b", "a", "c")] == [True, True, False, True]
    assert seen.full
    assert [seen.first(k) for k in ("d", "e", "a")] == [False, False, False]
    assert len(seen) == 3
    seen.clear()
    assert len(seen) == 0
    assert seen.first("d")
    with pytest.raises(ValueError, match="positive"):
        FirstSeen(0)
