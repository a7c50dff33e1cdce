"""Trickled offers: wait briefly for the caller's candidates, then ring with them in the SDP.

An SDK with ``trickleIce`` sends its invite at once with no candidates and the candidates
after it (``telnyx_rtc.candidate``, then ``telnyx_rtc.endOfCandidates``). A callee's SDK
that does not trickle never applies relayed candidates (it queues them until a remote
description it sets only when trickling), so on loopback it still connects through
peer-reflexive candidates, and behind two NATs it does not connect at all (measured in
Chromium: the callee's only remote candidate was ``prflx``). So an offer without candidates
waits for the caller's end-of-candidates (or ``TRICKLE_WAIT``) and rings the callee with every
candidate written into the offer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from voxgate.rtc.outputs import Offer, RouteCall

__all__ = ["TRICKLE_WAIT", "Gathering", "wants_candidates", "with_candidates"]

TRICKLE_WAIT = 2.0  # seconds an offer without candidates may wait for them
MAX_CANDIDATES = 32


def wants_candidates(sdp: str) -> bool:
    """An offer that says it trickles and carries no candidate yet."""
    return "a=ice-options:trickle" in sdp and "a=candidate:" not in sdp


def with_candidates(sdp: str, candidates: list[tuple[int, str]]) -> str:
    """``sdp`` with ``a=candidate`` lines added to the m-section each one names (by index)."""
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    for index, candidate in candidates:
        if 0 <= index < len(sections) - 1:
            text = candidate if candidate.startswith("candidate:") else f"candidate:{candidate}"
            sections[index + 1].append(f"a={text}")
    return "\r\n".join(line for section in sections for line in section) + "\r\n"


@dataclass(slots=True)
class Gathering:
    """One caller's offer waiting for its candidates."""

    route: RouteCall
    until: float
    candidates: list[tuple[int, str]] = field(default_factory=list)

    def add(self, params: dict[str, object]) -> None:
        text, index = params.get("candidate"), params.get("sdpMLineIndex")
        fits = len(self.candidates) < MAX_CANDIDATES
        if fits and isinstance(text, str) and 0 < len(text) <= 512 and isinstance(index, int):
            self.candidates.append((index, text))

    def release(self) -> RouteCall:
        offer: Offer = self.route.offer
        sdp = with_candidates(offer.sdp, self.candidates)
        return replace(self.route, offer=replace(offer, sdp=sdp))
