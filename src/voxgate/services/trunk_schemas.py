"""Input validation for SIP trunks and the phone numbers voxgate holds.

Trunks are voxgate's own resource: an unknown field is refused (a misspelt ``password`` must
not be dropped without a word). Phone numbers are Telnyx-shaped: the SDK's update sends
fields voxgate has no use for (tags, billing groups), which are ignored.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from voxgate.services.numbering import E164

__all__ = [
    "DEFAULT_PORTS",
    "NumberCreate",
    "NumberUpdate",
    "TrunkCreate",
    "TrunkUpdate",
]

Transport = Literal["udp", "tcp", "tls"]
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
MAX_SOURCE_ADDRESSES = 64
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def check_host(value: str) -> str:
    """A DNS name or an IP address: no scheme, no port, no user, no spaces."""
    if len(value) > 253:
        raise ValueError("must be at most 253 characters")
    try:
        bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    labels = value.removesuffix(".").split(".")
    if not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise ValueError(
            "must be a host name (like sip.telnyx.com) or an IP address, "
            "without a scheme, port or spaces"
        )
    return value.removesuffix(".").lower()


def check_sip_text(value: str, field: str) -> None:
    """A user name or password as it goes into a SIP header: printable, no CR/LF."""
    if not value.isprintable():
        raise ValueError(f"{field} must be printable characters (no line breaks)")


def check_sources(values: list[str]) -> list[str]:
    """IP addresses or CIDRs, kept as CIDRs (``192.0.2.7`` is ``192.0.2.7/32``)."""
    if len(values) > MAX_SOURCE_ADDRESSES:
        raise ValueError(f"at most {MAX_SOURCE_ADDRESSES} entries")
    out: list[str] = []
    for value in values:
        try:
            network = str(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR") from None
        if network not in out:
            out.append(network)
    return out


class _TrunkFields(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(None, min_length=1, max_length=255)
    host: str | None = Field(None, min_length=1, max_length=253)
    port: int | None = Field(None, ge=1, le=65535)
    transport: Transport | None = None
    username: str | None = Field(None, min_length=1, max_length=128)
    password: SecretStr | None = None  # never in a repr, a log line or an error
    caller_id: str | None = None
    registration: bool | None = Field(None, alias="register")  # (a BaseModel attribute)
    source_addresses: list[str] | None = None
    concurrent_call_limit: int | None = Field(None, ge=1, le=100_000)
    enabled: bool | None = None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        return None if value is None else check_host(value)

    @field_validator("caller_id")
    @classmethod
    def _caller_id(cls, value: str | None) -> str | None:
        if value is not None and not E164.match(value):
            raise ValueError("must be E.164: '+', the country code and the number (digits only)")
        return value

    @field_validator("transport", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is not None:
            check_sip_text(value, "username")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            if not 1 <= len(value.get_secret_value()) <= 128:
                raise ValueError("must be 1-128 characters")
            check_sip_text(value.get_secret_value(), "password")
        return value

    @field_validator("source_addresses")
    @classmethod
    def _sources(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_sources(value)


class TrunkCreate(_TrunkFields):
    name: str = Field(min_length=1, max_length=255)
    host: str = Field(min_length=1, max_length=253)
    transport: Transport = "udp"
    registration: bool = Field(False, alias="register")
    source_addresses: list[str] = Field(default_factory=list)
    enabled: bool = True

    @model_validator(mode="after")
    def _default_port(self) -> TrunkCreate:
        if self.port is None:
            self.port = DEFAULT_PORTS[self.transport]
        return self


class TrunkUpdate(_TrunkFields):
    """Only what is given changes; ``null`` clears a field that may be empty (username and
    password together, caller_id, concurrent_call_limit, source_addresses)."""


class _NumberFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    connection_id: str | None = Field(None, min_length=1, max_length=64)
    credential_id: str | None = Field(None, min_length=1, max_length=64)
    trunk_id: str | None = Field(None, min_length=1, max_length=64)

    @field_validator("connection_id", mode="before")
    @classmethod
    def _id_as_string(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class NumberCreate(_NumberFields):
    phone_number: str = Field(min_length=2, max_length=64)


class NumberUpdate(_NumberFields):
    """``connection_id`` moves the number to a connection (and off any credential);
    ``credential_id`` to a credential (and its connection); ``trunk_id: null`` lets it arrive
    on any enabled trunk."""
