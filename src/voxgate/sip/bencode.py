"""Bencode (BEP 3), the encoding of rtpengine's ng control protocol (``ng.py``).

Our own, not ``fastbencode`` (which installs cleanly): rtpengine writes a dictionary's keys
in the order it builds them (``d3:sdp...6:result2:oke``), not sorted as BEP 3 asks, and
fastbencode's decoder refuses every unsorted dictionary ("dict keys disordered") with no
switch to allow it, so it cannot read rtpengine's replies. This codec encodes canonically
(keys sorted) and decodes keys in any order; in everything else it is strict (no leading
zeros, no ``-0``, no duplicate keys, nothing after the value), and its nesting is bounded, so
a malformed or hostile datagram is a ``BencodeError``, never a ``RecursionError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias

__all__ = ["MAX_DEPTH", "BencodeError", "Encodable", "Value", "decode", "encode"]

# What decode returns; encode takes the same, or any sequence or mapping of it.
Value: TypeAlias = int | bytes | str | list["Value"] | dict[str, "Value"]
Encodable: TypeAlias = int | bytes | str | Sequence["Encodable"] | Mapping[str, "Encodable"]
MAX_DEPTH = 64  # rtpengine's deepest reply (query) nests 8 levels; this bounds a hostile one
_INTEGER = re.compile(rb"0|-?[1-9][0-9]*")
_LENGTH = re.compile(rb"0|[1-9][0-9]{0,9}")


class BencodeError(ValueError):
    """Bytes that are not bencode, or a value bencode cannot hold."""


def encode(value: Encodable) -> bytes:
    """Canonical bencode: dictionary keys sorted by their UTF-8 bytes; ``str`` as UTF-8
    (lone surrogates from ``decode(..., text=True)`` back to the bytes they stood for)."""
    out: list[bytes] = []
    _encode(value, out, 0)
    return b"".join(out)


def _encode(value: Encodable, out: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BencodeError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, bool):  # an int to Python, a flag or a string to rtpengine
        raise BencodeError("bencode has no booleans")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogateescape")
        out += [b"%d:" % len(raw), raw]
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out += [b"%d:" % len(raw), raw]
    elif isinstance(value, Mapping):
        keys: dict[bytes, Encodable] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise BencodeError(f"dictionary keys are text, not {type(key).__name__}")
            keys[key.encode("utf-8", "surrogateescape")] = item
        out.append(b"d")
        for raw in sorted(keys):
            out += [b"%d:" % len(raw), raw]
            _encode(keys[raw], out, depth + 1)
        out.append(b"e")
    elif isinstance(value, Sequence):
        out.append(b"l")
        for item in value:
            _encode(item, out, depth + 1)
        out.append(b"e")
    else:
        raise BencodeError(f"cannot bencode a {type(value).__name__}")


def decode(data: bytes, *, text: bool = False) -> Value:
    """One bencoded value, all of ``data``. Strings come back as ``bytes``, or with ``text``
    as ``str`` (UTF-8; bytes that are not UTF-8 kept as lone surrogates, which ``encode``
    turns back into the same bytes); dictionary keys are always ``str``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise BencodeError(f"bencode is bytes, not {type(data).__name__}")
    data = bytes(data)
    value, end = _decode(data, 0, text, 0)
    if end != len(data):
        raise BencodeError(f"{len(data) - end} bytes after the value at offset {end}")
    return value


def _decode(data: bytes, pos: int, text: bool, depth: int) -> tuple[Value, int]:
    if depth > MAX_DEPTH:
        raise BencodeError(f"nested deeper than {MAX_DEPTH} levels")
    kind = data[pos : pos + 1]
    if kind == b"i":
        end = data.find(b"e", pos + 1)
        if end < 0 or not _INTEGER.fullmatch(data, pos + 1, end):
            raise BencodeError(f"malformed integer at offset {pos}")
        return int(data[pos + 1 : end]), end + 1
    if kind == b"l":
        items: list[Value] = []
        pos += 1
        while data[pos : pos + 1] != b"e":
            item, pos = _decode(data, pos, text, depth + 1)
            items.append(item)
        return items, pos + 1
    if kind == b"d":
        found: dict[str, Value] = {}
        pos += 1
        while data[pos : pos + 1] != b"e":
            if pos >= len(data):
                raise BencodeError(f"truncated at offset {pos}")
            if not data[pos : pos + 1].isdigit():
                raise BencodeError(f"dictionary key at offset {pos} is not a string")
            raw, pos = _string(data, pos)
            key = raw.decode("utf-8", "surrogateescape")
            if key in found:
                raise BencodeError(f"dictionary key {key!r} given twice")
            found[key], pos = _decode(data, pos, text, depth + 1)
        return found, pos + 1
    if kind.isdigit():
        raw, pos = _string(data, pos)
        return (raw.decode("utf-8", "surrogateescape") if text else raw), pos
    if not kind:
        raise BencodeError(f"truncated at offset {pos}")
    raise BencodeError(f"unexpected {kind!r} at offset {pos}")


def _string(data: bytes, pos: int) -> tuple[bytes, int]:
    colon = data.find(b":", pos)
    if colon < 0 or not _LENGTH.fullmatch(data, pos, colon):
        raise BencodeError(f"malformed string length at offset {pos}")
    end = colon + 1 + int(data[pos:colon])
    if end > len(data):
        raise BencodeError(f"string at offset {pos} runs past the end")
    return data[colon + 1 : end], end
