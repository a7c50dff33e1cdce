"""SIP messages as values: read from the wire with ``sipmessage``, built and written here.

``parse`` turns a datagram (or one framed TCP message) into a frozen ``Request`` or
``Response``; ``bytes(message)`` writes it back. The library does the RFC 3261 grammar (start
line, compact header names, Via, name-addr, CSeq, URIs); this module adds what a user agent
needs on top and the library leaves out:

- strictness: the five headers every message carries (Via with a branch, From, To, Call-ID,
  CSeq) must be there and parse, a request's CSeq method must be its method, and a body
  shorter than its Content-Length is refused (RFC 3261 18.3);
- header folding and ``Name : value`` are normalised before the library sees them (it splits
  lines on CRLF and names on the first colon only);
- header values are kept as received. ``sipmessage`` re-quotes parameters when it writes an
  address (``+sip.instance="<urn:...>"`` would come back percent-encoded), so the route set,
  Contact and Via copied into requests and responses are the peer's own text.

Content-Length is never stored: it is derived from the body when a message is written, so
``parse(bytes(m)) == m`` for every message this module can hold.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import NamedTuple

import sipmessage

__all__ = [
    "CSeq",
    "Headers",
    "ParseError",
    "Request",
    "Response",
    "Transport",
    "header_uri",
    "parse",
    "split_list",
]

Headers = tuple[tuple[str, str], ...]
_FOLD = re.compile(rb"\r\n[ \t]+")  # RFC 3261 7.3.1: a line starting with white space continues
_NAME_SPACE = re.compile(rb"(?m)^([!-9;-~]+)[ \t]+:")  # "Via :" -> "Via:"
_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")


class ParseError(ValueError):
    """Bytes that are not a SIP message this user agent can act on; the adapter drops them."""


class Transport(enum.Enum):
    UDP = "UDP"
    TCP = "TCP"

    @property
    def reliable(self) -> bool:
        """Reliable transports need no retransmissions (RFC 3261 17.1.1.2, 17.1.2.2)."""
        return self is not Transport.UDP


class CSeq(NamedTuple):
    number: int
    method: str


class _Access:
    """What requests and responses share: header access and the values a dialog reads."""

    __slots__ = ()
    headers: Headers
    body: bytes

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        low = name.lower()
        for key, value in self.headers:
            if key.lower() == low:
                return value
        return None

    def values(self, name: str) -> list[str]:
        """Every line of header ``name``, in order (comma lists are not split)."""
        low = name.lower()
        return [value for key, value in self.headers if key.lower() == low]

    def _required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise ParseError(f"no {name} header")
        return value

    @property
    def call_id(self) -> str:
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        parsed = sipmessage.CSeq.parse(self._required("CSeq"))
        return CSeq(parsed.sequence, parsed.method)

    @property
    def vias(self) -> list[sipmessage.Via]:
        return [via for line in self.values("Via") for via in sipmessage.Via.parse_many(line)]

    @property
    def branch(self) -> str:
        """The top Via's branch: the transaction this message belongs to."""
        return self.vias[0].parameters.get("branch") or ""

    @property
    def from_tag(self) -> str | None:
        return sipmessage.Address.parse(self._required("From")).parameters.get("tag")

    @property
    def to_tag(self) -> str | None:
        return sipmessage.Address.parse(self._required("To")).parameters.get("tag")

    @property
    def contact(self) -> str | None:
        """The first Contact's URI, as the peer wrote it."""
        value = self.get("Contact")
        return header_uri(split_list(value)[0]) if value else None

    @property
    def record_route(self) -> list[str]:
        """Every Record-Route entry, top first, as the peer wrote it."""
        return [entry for line in self.values("Record-Route") for entry in split_list(line)]

    @property
    def content_type(self) -> str:
        """The media type, lower case, without parameters ("" when absent)."""
        value = self.get("Content-Type") or ""
        return value.split(";", 1)[0].strip().lower()

    @property
    def sdp(self) -> str | None:
        """The body when it is an SDP (an offer or an answer), else None."""
        if self.body and self.content_type == "application/sdp":
            return self.body.decode("utf-8", "replace")
        return None


@dataclass(frozen=True, slots=True)
class Request(_Access):
    method: str
    uri: str
    headers: Headers
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return _write(f"{self.method} {self.uri} SIP/2.0", self.headers, self.body)


@dataclass(frozen=True, slots=True)
class Response(_Access):
    status: int
    reason: str
    headers: Headers
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return _write(f"SIP/2.0 {self.status} {self.reason}", self.headers, self.body)


def _write(start: str, headers: Headers, body: bytes) -> bytes:
    lines = [start]
    for name, value in headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"line break in header {name!r}")  # header injection
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse(data: bytes) -> Request | Response:
    """One SIP message, strictly; anything else raises ``ParseError`` (and nothing else)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise ParseError("no end of headers")
    head = _NAME_SPACE.sub(rb"\1:", _FOLD.sub(b" ", head))
    try:
        raw = sipmessage.Message.parse(head + b"\r\n\r\n")
    except (ValueError, IndexError, KeyError) as exc:  # UnicodeDecodeError is a ValueError
        raise ParseError(f"not a SIP message: {exc}") from None
    headers = tuple(
        (name, value)
        for name in raw.headers.keys()  # noqa: SIM118 (a Headers, not a dict)
        if name.lower() != "content-length"
        for value in raw.headers.getlist(name)
    )
    body = _body(raw.headers.get("Content-Length"), rest)
    message: Request | Response
    if isinstance(raw, sipmessage.Request):
        uri = head.split(b" ", 2)[1].decode()  # the request URI as written, not re-quoted
        message = Request(raw.method, uri, headers, body)
    else:
        if not 100 <= raw.code <= 699:
            raise ParseError(f"status {raw.code}")
        message = Response(raw.code, raw.phrase, headers, body)
    _check(message)
    return message


def _body(length: str | None, rest: bytes) -> bytes:
    if length is None:
        return rest  # UDP: the datagram ends the body (TCP framing is the adapter's)
    if not length.isdigit():
        raise ParseError(f"Content-Length {length!r}")
    size = int(length)
    if size > len(rest):
        raise ParseError("body shorter than Content-Length")
    return rest[:size]


def _check(message: Request | Response) -> None:
    for name in _MANDATORY:
        message._required(name)
    try:
        cseq, vias = message.cseq, message.vias
        message.from_tag, message.to_tag  # noqa: B018 (they must parse)
        if isinstance(message, Request):
            sipmessage.URI.parse(message.uri)
            if message.contact is not None:
                sipmessage.URI.parse(message.contact)
    except ValueError as exc:
        raise ParseError(str(exc)) from None
    if not vias or not vias[0].parameters.get("branch"):
        raise ParseError("the top Via has no branch")
    if isinstance(message, Request) and cseq.method != message.method:
        raise ParseError(f"CSeq method {cseq.method} in a {message.method}")


def split_list(value: str) -> list[str]:
    """A comma-separated header value split into its entries, commas inside quotes and
    angle brackets kept (``"Doe, J" <sip:a@b>, <sip:c@d>`` is two entries)."""
    entries: list[str] = []
    depth, quoted, start, i = 0, False, 0, 0
    while i < len(value):
        char = value[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            entries.append(value[start:i].strip())
            start = i + 1
        i += 1
    entries.append(value[start:].strip())
    return [entry for entry in entries if entry]


def header_uri(entry: str) -> str:
    """The URI of one name-addr or addr-spec entry, as written."""
    opening = entry.find("<")
    if opening >= 0:
        closing = entry.find(">", opening)
        if closing < 0:
            raise ParseError(f"unclosed <: {entry!r}")
        return entry[opening + 1 : closing]
    return entry.split(";", 1)[0].strip()
