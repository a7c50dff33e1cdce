"""Bencode and ng framing without a socket: round trips, rtpengine's unsorted replies, and a
clear ``BencodeError`` for every malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxgate.domain.errors import ConfigurationError
from voxgate.sip.bencode import MAX_DEPTH, BencodeError, Value, decode, encode
from voxgate.sip.ng import frame, options, parse_address, unframe

# what rtpengine 10.5 really answered to an offer and to a delete of an unknown call: keys in
# the order it wrote them ("sdp" before "result"), which BEP 3 (and fastbencode) call invalid
OFFER_REPLY = (
    b"c2 d3:sdp136:v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 41000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    b"a=rtcp:41001\r\n6:result2:oke"
)
WARNING_REPLY = b"c5 d7:warning38:Call-ID not found or tags didn't match6:result2:oke"

texts = st.text()
binaries = st.binary()
values: st.SearchStrategy[Value] = st.recursive(
    st.integers() | binaries,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300)
@given(values)
def test_bytes_round_trip_exactly(value: Value) -> None:
    assert decode(encode(value)) == value


@settings(max_examples=300)
@given(binaries)
def test_text_decoding_keeps_every_byte(raw: bytes) -> None:
    """Strings that are not UTF-8 still come back byte for byte through ``text=True``."""
    as_text = decode(encode(raw), text=True)
    assert isinstance(as_text, str)
    assert encode(as_text) == encode(raw)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_garbage_is_a_bencode_error_or_a_value(data: bytes) -> None:
    try:
        value = decode(data)
    except BencodeError:
        return
    assert encode(value) == data or data[:1] == b"d"  # a dictionary may have come unsorted


def test_the_encoding_is_canonical() -> None:
    assert encode({"b": 1, "a": [b"x", "y", -3, 0], "c": {}}) == b"d1:al1:x1:yi-3ei0ee1:bi1e1:cdee"
    assert encode("é") == b"2:\xc3\xa9"
    assert encode(("t", "u")) == b"l1:t1:ue"  # any sequence is a list
    assert encode({"é": 1, "z": 2}) == b"d1:zi2e2:\xc3\xa9i1ee"  # sorted by UTF-8 bytes


def test_bytes_and_text() -> None:
    encoded = encode({"sdp": "v=0\r\n", "raw": b"\xff\x00"})
    assert decode(encoded) == {"raw": b"\xff\x00", "sdp": b"v=0\r\n"}
    assert decode(encoded, text=True) == {"raw": "\udcff\x00", "sdp": "v=0\r\n"}
    assert encode("\udcff") == b"1:\xff"  # a surrogate from text decoding is its byte again
    nested = decode(b"d1:ald1:bl2:hieee1:ci7ee", text=True)
    assert nested == {"a": [{"b": ["hi"]}], "c": 7}


def test_rtpengine_replies_with_unsorted_keys_are_read() -> None:
    cookie, reply = unframe(OFFER_REPLY)
    assert cookie == "c2"
    assert reply["result"] == "ok"
    assert isinstance(reply["sdp"], str) and "m=audio 41000 RTP/AVP 0" in reply["sdp"]
    assert unframe(WARNING_REPLY)[1]["warning"] == "Call-ID not found or tags didn't match"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "truncated"),
        (b"i12", "malformed integer"),
        (b"ie", "malformed integer"),
        (b"i-0e", "malformed integer"),
        (b"i03e", "malformed integer"),
        (b"i1.5e", "malformed integer"),
        (b"5:abc", "runs past the end"),
        (b"05:abcde", "malformed string length"),
        (b"-1:a", "unexpected"),
        (b"3abc", "malformed string length"),
        (b"l1:a", "truncated"),
        (b"d1:a", "truncated"),
        (b"d1:ai1e", "truncated"),
        (b"di1ei2ee", "not a string"),
        (b"d1:ai1e1:ai2ee", "given twice"),
        (b"i1ei2e", "after the value"),
        (b"x", "unexpected"),
        (b"l" * (MAX_DEPTH + 2) + b"e" * (MAX_DEPTH + 2), "nested deeper"),
    ],
)
def test_malformed_input_is_a_clear_error(data: bytes, why: str) -> None:
    with pytest.raises(BencodeError, match=why):
        decode(data)


def test_values_bencode_cannot_hold_are_refused() -> None:
    for value, why in [
        (True, "no booleans"),
        (1.5, "cannot bencode a float"),
        (None, "cannot bencode a NoneType"),
        ({1: b"x"}, "keys are text"),
        ({b"k": b"x"}, "keys are text"),
    ]:
        with pytest.raises(BencodeError, match=why):
            encode(value)  # type: ignore[arg-type]
    deep: list[object] = []
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(BencodeError, match="nested deeper"):
        encode(deep)  # type: ignore[arg-type]
    with pytest.raises(BencodeError, match="bytes, not str"):
        decode("i1e")  # type: ignore[arg-type]


def test_framing() -> None:
    datagram = frame("abc_1", {"command": "ping"})
    assert datagram == b"abc_1 d7:command4:pinge"
    assert unframe(b"abc_1 d6:result4:ponge") == ("abc_1", {"result": "pong"})
    for bad, why in [
        (b"d6:result4:ponge", "starts with a cookie"),
        (b" d6:result4:ponge", "starts with a cookie"),
        (b"c1 l4:ponge", "is a dictionary"),
        (b"c1 d6:result4:pong", "truncated"),
    ]:
        with pytest.raises(BencodeError, match=why):
            unframe(bad)


def test_keyword_options_become_ng_keys_and_flags() -> None:
    assert options(
        {
            "transport_protocol": "RTP/AVP",
            "ICE": "remove",
            "rtcp_mux": ["demux"],
            "inject_DTMF": True,
            "trust_address": True,
            "label": None,
            "strict_source": False,
            "flags": ["strip-extmap"],
        }
    ) == {
        "transport-protocol": "RTP/AVP",
        "ICE": "remove",
        "rtcp-mux": ["demux"],
        "flags": ["strip-extmap", "inject-DTMF", "trust-address"],
    }
    with pytest.raises(BencodeError, match="list of names"):
        options({"flags": "fatal", "all": True})


def test_ng_addresses() -> None:
    assert parse_address("127.0.0.1:2223") == ("127.0.0.1", 2223)
    assert parse_address("[::1]:2223") == ("::1", 2223)
    assert parse_address("rtpengine.internal:22222") == ("rtpengine.internal", 22222)
    for bad in ["127.0.0.1", ":2223", "::1:2223", "host:0", "host:70000", "a b:1", ""]:
        with pytest.raises(ConfigurationError, match="HOST:PORT"):
            parse_address(bad)
