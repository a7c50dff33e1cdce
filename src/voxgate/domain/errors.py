"""The one exception tree.

Every error knows how it looks on both wires: the REST status plus Telnyx error code, and the
JSON-RPC code used by the signaling gateway. Messages are for humans and must never contain a
token, a password or a key: callers pass field names, never values.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AuthenticationFailed",
    "BadRequest",
    "ConfigurationError",
    "Conflict",
    "CredentialExpired",
    "Forbidden",
    "InvalidParams",
    "InvalidRequest",
    "LoginFailed",
    "MethodNotFound",
    "NotAuthenticated",
    "NotFound",
    "ParseError",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "TargetRefused",
    "TooManyRequests",
    "ValidationFailed",
    "VoxgateError",
]


class VoxgateError(Exception):
    """Root of every error voxgate raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "10007"
    title: ClassVar[str] = "Unexpected error"
    rpc_code: ClassVar[int] = -32603

    def __init__(self, detail: str | None = None, *, pointer: str | None = None) -> None:
        self.detail = detail or self.title
        self.pointer = pointer
        super().__init__(self.detail)


class AuthenticationFailed(VoxgateError):
    status = 401
    code = "10009"
    title = "Authentication failed"


class Forbidden(VoxgateError):
    """A valid API key whose scope does not cover the request (a ``tokens`` key)."""

    status = 403
    code = "10010"
    title = "Authorization failed"


class NotFound(VoxgateError):
    status = 404
    code = "10005"
    title = "Resource not found"
    rpc_code = -32602


class BadRequest(VoxgateError):
    status = 400
    code = "10015"
    title = "Bad Request"
    rpc_code = -32602


class ValidationFailed(VoxgateError):
    status = 422
    code = "10015"
    title = "Bad Request"
    rpc_code = -32602


class CredentialExpired(ValidationFailed):
    """An expired credential is terminal: it can only be deleted."""


class TargetRefused(ValidationFailed):
    """A webhook URL whose address is not public (SSRF; ``domain/webhook_targets.py``): a 422
    when the URL is written, and an event dropped (counted, never retried) at delivery."""


class Conflict(VoxgateError):
    """Sent with ``x-should-retry: false`` because the SDKs retry 409 by default."""

    status = 409
    code = "10012"
    title = "Duplicate resource"


class TooManyRequests(VoxgateError):
    status = 429
    code = "10011"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ServiceUnavailable(VoxgateError):
    status = 503
    code = "10007"
    title = "Service unavailable"


class LoginFailed(VoxgateError):
    """Any failed login. Always -32001: the browser SDK loops forever on -32000 to a login."""

    status = 401
    code = "10009"
    title = "Login Incorrect"
    rpc_code = -32001

    def __init__(
        self, detail: str | None = None, *, subject: str | None = None, final: bool = False
    ) -> None:
        super().__init__(detail)
        self.subject = subject  # the credential id, when the token's signature was genuine
        # Retrying cannot help (first_wins: the credential is registered elsewhere): the socket
        # is punted, so the SDK shows one error instead of reconnecting and failing forever.
        self.final = final


class NotAuthenticated(VoxgateError):
    """A non-login request on a socket that has not logged in; the SDK re-logs in on it."""

    status = 401
    code = "10009"
    title = "Authentication Required"
    rpc_code = -32000


class InvalidParams(VoxgateError):
    status = 400
    code = "10015"
    title = "Invalid params"
    rpc_code = -32602


class MethodNotFound(NotFound):
    title, rpc_code = "Method not found", -32601


class ParseError(BadRequest):
    """A signaling frame that is not JSON."""

    title, rpc_code = "Parse error", -32700


class InvalidRequest(BadRequest):
    """JSON, but not a JSON-RPC request or response (bad id, bad method, not an object)."""

    title, rpc_code = "Invalid Request", -32600


class ConfigurationError(VoxgateError):
    """The deployment is inconsistent (e.g. the secret file does not match the database)."""

    title = "Configuration error"


class PayloadTooLarge(VoxgateError):
    status = 413
    code = "10015"
    title = "Payload too large"
