"""Plain records shared by every layer; the store maps rows to these and nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from voxgate.domain.registrations import TELNYX_RULE, Admission, Registration, TokenReuse

T = TypeVar("T")

__all__ = [
    "ApiKey",
    "Assistant",
    "AuditEvent",
    "CallIds",
    "CallReport",
    "Connection",
    "Credential",
    "CredentialStatus",
    "Grant",
    "IceServers",
    "Page",
    "PhoneNumber",
    "Registration",
    "SigningKey",
    "Trunk",
    "TrunkRoute",
]


class CredentialStatus:
    ACTIVE = "active"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    ALL = (ACTIVE, INACTIVE, EXPIRED)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    label: str
    digest: str
    created_at: datetime
    revoked_at: datetime | None = None
    scope: str = "admin"  # admin | tokens (services/apikeys.py)
    prefix: str = ""  # the key's first characters, to tell keys apart
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Connection:
    """A credential connection. ``settings`` holds every REST field beyond the core ones."""

    id: str
    connection_name: str
    user_name: str
    password_hash: str
    active: bool
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    digest: bytes | None = None  # sealed SIP digest secret (auth/digest.py); never rendered


@dataclass(frozen=True, slots=True)
class Credential:
    id: str
    connection_id: str
    name: str
    tag: str | None
    sip_username: str
    sip_password_hash: str
    status: str
    expires_at: datetime
    tokens_valid_after: datetime
    created_at: datetime
    updated_at: datetime
    registration_policy: str | None = None  # None: the connection's
    max_registrations: int | None = None  # None: the connection's, else the policy's default
    sip_digest: bytes | None = None  # sealed SIP digest secret (auth/digest.py); never rendered

    def is_expired(self, now: datetime) -> bool:
        return self.status == CredentialStatus.EXPIRED or self.expires_at <= now

    def effective_status(self, now: datetime) -> str:
        return CredentialStatus.EXPIRED if self.is_expired(now) else self.status


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    secret: bytes
    created_at: datetime
    retired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: str
    credential_id: str
    kind: str
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Assistant:
    id: str
    name: str
    kind: str
    created_at: datetime
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    number: int
    size: int

    @property
    def total_pages(self) -> int:
        return max(1, -(-self.total // self.size)) if self.size else 1


@dataclass(frozen=True, slots=True)
class IceServers:
    """``RTCIceServer`` dicts for a client, and when their TURN credentials expire."""

    servers: tuple[dict[str, Any], ...]
    expires_at: float


@dataclass(frozen=True, slots=True)
class Grant:
    """What a successful login proved. ``expires_at`` is epoch seconds (None: no expiry)."""

    method: str  # "token" | "password" | "anonymous"
    principal: str
    connection_id: str
    credential_id: str | None
    sip_username: str
    expires_at: float | None
    jti: str | None = None
    assistant_id: str | None = None
    conversation_id: str | None = None
    issued_at: float | None = None  # the token's iat, to re-check it against revocations
    ice: IceServers | None = None  # the ICE servers (TURN credentials) minted for this login
    admission: Admission = TELNYX_RULE  # how many registrations, and which of them ring
    on_token_reuse: TokenReuse = TokenReuse.AUDIT

    @property
    def anonymous(self) -> bool:
        return self.method == "anonymous"


@dataclass(frozen=True, slots=True)
class CallReport:
    """One upload of the SDK about one call leg: an intermediate segment, the final report,
    or (if an operator allows them) a recording segment. ``body`` is the SDK's JSON as sent."""

    id: str
    call_id: str
    session_id: str
    credential_id: str | None
    connection_id: str
    kind: str  # "report" | "recording"
    final: bool
    segment: int | None
    received_at: datetime
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallIds:
    """Telnyx's ids for one leg of a call, as its webhooks and the SDK's ``call.telnyxIDs``
    show them; the same three values on both, so an app can tie a browser call to its events."""

    call_control_id: str
    call_session_id: str
    call_leg_id: str

    @classmethod
    def for_leg(cls, call_session_id: str, direction: str) -> CallIds:
        """``direction`` is ``outgoing`` (the caller's leg) or ``incoming`` (the callee's)."""
        leg = f"{call_session_id}:{direction}"
        return cls(f"v3:{leg}", call_session_id, leg)

    def frame_params(self) -> dict[str, str]:
        """As the SDK reads them from invite, ringing and answer frames."""
        return {
            "telnyx_call_control_id": self.call_control_id,
            "telnyx_session_id": self.call_session_id,
            "telnyx_leg_id": self.call_leg_id,
        }


@dataclass(frozen=True, slots=True)
class Trunk:
    """A SIP peer towards the phone network (a carrier's SIP trunk, or a company PBX): where
    calls to numbers go out, and from where calls to our numbers may come in."""

    id: str
    name: str
    host: str  # a name (SRV/A looked up by Kamailio) or an address
    port: int
    transport: str  # udp | tcp | tls
    username: str | None  # for the carrier's 401/407 challenges (and its registration)
    secret: bytes | None  # the sealed password (``Sealer.seal(password, id)``); never rendered
    caller_id: str | None  # E.164 presented in From and P-Asserted-Identity
    register: bool  # keep a registration at the carrier
    source_addresses: list[str]  # CIDRs the carrier calls us from; empty: the host's addresses
    concurrent_call_limit: int | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A number voxgate holds: a trunk's call to it rings the credential (or, with none, the
    connection's registrations) it is assigned to."""

    id: str
    phone_number: str  # E.164
    connection_id: str
    credential_id: str | None
    trunk_id: str | None  # the trunk it arrives on (None: any enabled trunk)
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TrunkRoute:
    """A call to a number as the SIP edge places it: where it goes, who it says is calling,
    and how it answers the carrier's challenge (the password opened just for this call)."""

    trunk_id: str
    host: str
    port: int
    transport: str
    caller_id: str  # E.164, in From and P-Asserted-Identity
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def uri_suffix(self) -> str:
        return f"@{self.host}:{self.port};transport={self.transport}"
