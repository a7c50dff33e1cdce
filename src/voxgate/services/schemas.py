"""Input validation for credential connections and telephony credentials.

Known fields are checked strictly (enums, ranges); unknown top-level fields are kept, because
users paste examples from Telnyx's docs that carry fields the spec does not list.
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from voxgate.domain.errors import ValidationFailed
from voxgate.domain.registrations import MAX_REGISTRATIONS
from voxgate.services.numbering import E164, regions

# Who may register at once and who rings (domain/registrations.py), and the answer to a token
# presented from two addresses; each null means "the default" (the connection's, for a
# credential).
PolicyName = Literal["latest_wins", "first_wins", "ring_all"]
RegistrationCap = int | None
TokenReuseName = Literal["audit", "revoke_token", "deactivate_credential"]
REGISTRATION_DEFAULTS: dict[str, Any] = {
    "registration_policy": "latest_wins",
    "max_registrations": None,
    "on_token_reuse": "audit",
}

__all__ = [
    "CONNECTION_DEFAULTS",
    "REGISTRATION_DEFAULTS",
    "ConnectionCreate",
    "ConnectionUpdate",
    "CredentialCreate",
    "CredentialUpdate",
    "deep_merge",
    "outbound_settings",
    "parse",
    "validation_error",
]

_USER_NAME = re.compile(r"^[A-Za-z0-9]{4,32}$")


class _Nested(BaseModel):
    model_config = ConfigDict(extra="allow")


class RtcpSettings(_Nested):
    port: Literal["rtcp-mux", "rtp+1"] | None = None
    capture_enabled: bool | None = None
    report_frequency_secs: int | None = Field(None, ge=5, le=3000)


class Inbound(_Nested):
    ani_number_format: Literal["+E.164", "E.164", "+E.164-national", "E.164-national"] | None = None
    dnis_number_format: Literal["+e164", "e164", "national", "sip_username"] | None = None
    codecs: list[str] | None = None
    channel_limit: int | None = Field(None, ge=0)
    default_routing_method: Literal["sequential", "round-robin"] | None = None
    generate_ringback_tone: bool | None = None
    isup_headers_enabled: bool | None = None
    prack_enabled: bool | None = None
    shaken_stir_enabled: bool | None = None
    simultaneous_ringing: Literal["disabled", "enabled"] | None = None
    sip_compact_headers_enabled: bool | None = None
    timeout_1xx_secs: int | None = Field(None, ge=1, le=120)
    timeout_2xx_secs: int | None = Field(None, ge=1, le=600)


class Outbound(_Nested):
    ani_override: str | None = None
    ani_override_type: Literal["always", "normal", "emergency"] | None = None
    call_parking_enabled: bool | None = None
    channel_limit: int | None = Field(None, ge=0)
    generate_ringback_tone: bool | None = None
    instant_ringback_enabled: bool | None = None
    localization: str | None = Field(None, min_length=2, max_length=2)
    outbound_voice_profile_id: str | None = None
    t38_reinvite_source: (
        Literal["telnyx", "customer", "disabled", "passthru", "caller-passthru", "callee-passthru"]
        | None
    ) = None
    # voxgate's: calls to phone numbers (README "Calling phone numbers"). ``channel_limit``
    # above is the connection's concurrent limit for them.
    trunk_id: str | None = Field(None, min_length=1, max_length=64)  # /v2/sip_trunks
    whitelisted_destinations: list[str] | None = Field(None, max_length=300)  # countries
    calls_per_minute: int | None = Field(None, ge=1, le=100_000)

    @field_validator("whitelisted_destinations")
    @classmethod
    def _countries(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else regions(value)

    @field_validator("ani_override")
    @classmethod
    def _ani(cls, value: str | None) -> str | None:
        """The caller id a carrier is told: a number, never free text (it goes into From)."""
        if value and not E164.match(value):
            raise ValueError("must be E.164 ('+', the country code and the number) or empty")
        return value


class JitterBuffer(_Nested):
    enable_jitter_buffer: bool | None = None
    jitterbuffer_msec_min: int | None = Field(None, ge=40, le=400)
    jitterbuffer_msec_max: int | None = Field(None, ge=40, le=400)


CONNECTION_DEFAULTS: dict[str, Any] = {
    "anchorsite_override": "Latency",
    "android_push_credential_id": None,
    "ios_push_credential_id": None,
    "call_cost_in_webhooks": False,
    "default_on_hold_comfort_noise_enabled": False,
    "dtmf_type": "RFC 2833",
    "encode_contact_header_enabled": False,
    "encrypted_media": None,
    "onnet_t38_passthrough_enabled": False,
    "sip_uri_calling_preference": "disabled",
    "tags": [],
    "webhook_event_url": None,
    "webhook_event_failover_url": "",
    "webhook_api_version": "1",
    "webhook_timeout_secs": None,
    "rtcp_settings": {"port": "rtp+1", "capture_enabled": False, "report_frequency_secs": 5},
    "inbound": {
        "ani_number_format": "E.164-national",
        "dnis_number_format": "e164",
        "codecs": ["G722", "G711U", "G711A", "G729", "OPUS", "H.264"],
        "channel_limit": None,
        "generate_ringback_tone": False,
        "isup_headers_enabled": False,
        "prack_enabled": False,
        "shaken_stir_enabled": False,
        "simultaneous_ringing": "disabled",
        "sip_compact_headers_enabled": True,
        "timeout_1xx_secs": 3,
        "timeout_2xx_secs": 90,
    },
    "outbound": {
        "ani_override": "",
        "ani_override_type": "always",
        "call_parking_enabled": False,
        "channel_limit": None,
        "generate_ringback_tone": False,
        "instant_ringback_enabled": True,
        "localization": "US",
        "outbound_voice_profile_id": None,
        "t38_reinvite_source": "telnyx",
        "trunk_id": None,
        "whitelisted_destinations": ["US", "CA"],  # Telnyx's outbound voice profile default
        "calls_per_minute": 60,
    },
    "jitter_buffer": {
        "enable_jitter_buffer": False,
        "jitterbuffer_msec_min": 60,
        "jitterbuffer_msec_max": 200,
    },
    "noise_suppression": "disabled",
    **REGISTRATION_DEFAULTS,
}


class _ConnectionFields(BaseModel):
    model_config = ConfigDict(extra="allow")

    user_name: str | None = None
    password: str | None = Field(None, min_length=8, max_length=128)

    active: bool | None = None
    anchorsite_override: (
        Literal[
            "Latency",
            "Chicago, IL",
            "Ashburn, VA",
            "San Jose, CA",
            "Sydney, Australia",
            "Amsterdam, Netherlands",
            "London, UK",
            "Toronto, Canada",
            "Vancouver, Canada",
            "Frankfurt, Germany",
        ]
        | None
    ) = None
    dtmf_type: Literal["RFC 2833", "Inband", "SIP INFO"] | None = None
    # "enabled" is not in the spec's enum, but Telnyx's own WebRTC tutorial sends it.
    sip_uri_calling_preference: (
        Literal["disabled", "unrestricted", "internal", "enabled"] | None
    ) = None
    tags: list[str] | None = None
    webhook_event_url: str | None = None
    webhook_event_failover_url: str | None = None
    webhook_api_version: Literal["1", "2", "texml"] | None = None
    webhook_timeout_secs: int | None = Field(None, ge=0, le=30)
    call_cost_in_webhooks: bool | None = None
    default_on_hold_comfort_noise_enabled: bool | None = None
    noise_suppression: Literal["inbound", "outbound", "both", "disabled"] | None = None
    rtcp_settings: RtcpSettings | None = None
    inbound: Inbound | None = None
    outbound: Outbound | None = None
    jitter_buffer: JitterBuffer | None = None
    registration_policy: PolicyName | None = None
    max_registrations: RegistrationCap = Field(None, ge=1, le=MAX_REGISTRATIONS)
    on_token_reuse: TokenReuseName | None = None

    @field_validator("webhook_event_url", "webhook_event_failover_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an absolute http(s) URL, including the scheme")
        return value

    @field_validator("user_name")
    @classmethod
    def _user_name(cls, value: str | None) -> str | None:
        if value is not None:
            check_user_name(value)
        return value

    @field_validator("outbound", mode="before")
    @classmethod
    def _profile_id_as_string(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("outbound_voice_profile_id"), int):
            value = {**value, "outbound_voice_profile_id": str(value["outbound_voice_profile_id"])}
        return value


class ConnectionCreate(_ConnectionFields):
    connection_name: str = Field(min_length=1, max_length=255)


class ConnectionUpdate(_ConnectionFields):
    connection_name: str | None = Field(None, min_length=1, max_length=255)
    conversation_persistence: bool | None = None


def check_user_name(value: str) -> None:
    if not _USER_NAME.match(value):
        raise ValueError("must be 4-32 characters, letters and digits only")
    if not any(ch.isalpha() for ch in value[:5]):
        raise ValueError("at least one of the first 5 characters must be a letter")


class _CredentialFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    connection_id: str | None = Field(None, min_length=1, max_length=64)
    name: str | None = Field(None, max_length=255)
    tag: str | None = Field(None, max_length=255)
    expires_at: str | None = None
    registration_policy: PolicyName | None = None
    max_registrations: RegistrationCap = Field(None, ge=1, le=MAX_REGISTRATIONS)

    @field_validator("connection_id", mode="before")
    @classmethod
    def _id_as_string(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class CredentialCreate(_CredentialFields):
    connection_id: str = Field(min_length=1, max_length=64)


class CredentialUpdate(_CredentialFields):
    pass


def validation_error(exc: ValidationError) -> ValidationFailed:
    """The first problem, as Telnyx reports it: a human detail and a JSON pointer to the field."""
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ())]
    pointer = "/" + "/".join(loc)
    field_name = ".".join(loc) or "body"
    if err.get("type") == "missing":
        return ValidationFailed(f"{field_name} is required", pointer=pointer)
    message = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
    return ValidationFailed(f"Invalid {field_name}: {message}", pointer=pointer)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], body: Any) -> M:
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object", pointer="/")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A connection's settings updated by a partial body: nested objects merge, not replace."""
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def outbound_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A connection's ``outbound`` settings with the defaults filled in: connections made
    before a field existed (the trunk, the destinations, the rate) read as new ones do."""
    return deep_merge(CONNECTION_DEFAULTS["outbound"], settings.get("outbound") or {})
