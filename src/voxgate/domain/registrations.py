"""How many registrations one identity may hold, and which of them ring.

Telnyx's rule (one credential, one registration, the latest wins) suits a phone. A user with
two tabs, a desk phone and a laptop, or a shared support line needs another: the first
registration keeps its place, or every registration rings. The rule is chosen per credential
(a connection gives the default) and travels with each registration, so every gateway node
decides alike from what presence holds, without a store look-up on the call path.

``admit`` is the whole decision for a new registration; the local bus runs it as it is and
the Redis bus runs the same steps in one Lua script (``bus/redis.py``); a test holds them to
the same answers.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX",
    "MAX_REGISTRATIONS",
    "TELNYX_RULE",
    "Admission",
    "Policy",
    "Registration",
    "TokenReuse",
    "Verdict",
    "admit",
    "ringing",
    "seniority",
]


class Policy(enum.StrEnum):
    LATEST_WINS = "latest_wins"  # a new registration displaces the oldest past the cap
    FIRST_WINS = "first_wins"  # a new registration is refused while the cap is reached
    RING_ALL = "ring_all"  # every registration rings; the first to answer takes the call


class TokenReuse(enum.StrEnum):
    """What a connection does when one token is presented from two addresses at once."""

    AUDIT = "audit"
    REVOKE_TOKEN = "revoke_token"  # noqa: S105 (a setting's name, not a secret)
    DEACTIVATE_CREDENTIAL = "deactivate_credential"


DEFAULT_MAX = {Policy.LATEST_WINS: 1, Policy.FIRST_WINS: 1, Policy.RING_ALL: 5}
MAX_REGISTRATIONS = 100  # an upper bound on the cap: each one rings on every call


@dataclass(frozen=True, slots=True)
class Registration:
    """One session's claim to a principal's inbound calls (how many, and which ring: the
    policy)."""

    principal: str
    connection_id: str
    credential_id: str | None
    sip_username: str
    session_id: str
    node_id: str
    address: str
    port: int
    user_agent: str
    registered_at: float
    transport: str = "WSS"
    policy: str = "latest_wins"  # the rule it was admitted under (decides who rings)
    expires_at: float | None = None  # when the login behind it runs out (token or credential)
    contact: str = ""  # a SIP registration's Contact URI (empty: a WebRTC session)

    @property
    def sip(self) -> bool:
        """A SIP phone's contact, held by a SIP edge, rather than a WebRTC session."""
        return bool(self.contact)


@dataclass(frozen=True, slots=True)
class Admission:
    policy: Policy = Policy.LATEST_WINS
    max_registrations: int = 1

    @classmethod
    def resolve(
        cls,
        policy: str | None,
        cap: int | None,
        *,
        default: Policy = Policy.LATEST_WINS,
    ) -> Admission:
        """The rule in force: the first of the credential's own and the connection's values
        that is set (the caller passes them already merged), else ``default`` and its cap."""
        chosen = Policy(policy) if policy else default
        return cls(chosen, cap if cap is not None else DEFAULT_MAX[chosen])


TELNYX_RULE = Admission()  # one registration, the latest wins


@dataclass(frozen=True, slots=True)
class Verdict:
    """``refused_by``: the registration that keeps its place (first_wins, cap reached).
    ``displaced``: the registrations the new one pushed out, oldest first. ``reused``: the
    addresses presenting the new session's token when other sessions hold it elsewhere (token
    reuse), its own among them; empty otherwise."""

    refused_by: Registration | None = None
    displaced: tuple[Registration, ...] = ()
    reused: tuple[str, ...] = ()


def admit(live: Sequence[Registration], new: Registration, admission: Admission) -> Verdict:
    """``live``: the identity's registrations on live nodes. The new registration's own
    session is not a rival (a reattach or a re-login of the same session)."""
    others = sorted((r for r in live if r.session_id != new.session_id), key=seniority)
    cap = max(1, admission.max_registrations)
    if admission.policy is Policy.FIRST_WINS and len(others) >= cap:
        return Verdict(refused_by=others[0])
    excess = max(0, len(others) - cap + 1)
    return Verdict(displaced=tuple(others[:excess]))


def seniority(reg: Registration) -> tuple[float, str]:
    """Oldest first; a tie goes by session id, so every bus orders alike."""
    return reg.registered_at, reg.session_id


def ringing(registrations: Sequence[Registration]) -> list[Registration]:
    """Who an inbound call rings: every registration under ring_all; otherwise the newest
    under latest_wins and the oldest under first_wins (the one that kept its place). The
    newest registration's policy decides (it was admitted under the rule now in force)."""
    if not registrations:
        return []
    ordered = sorted(registrations, key=seniority)
    policy = ordered[-1].policy
    if policy == Policy.RING_ALL:
        return ordered
    return [ordered[0] if policy == Policy.FIRST_WINS else ordered[-1]]
