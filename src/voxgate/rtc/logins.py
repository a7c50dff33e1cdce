"""A login request's params, parsed once into a typed value.

The SDK sends ``login`` with ``login_token``, or ``login`` + ``passwd`` (older clients say
``password``), and ``anonymous_login`` with ``target_type``/``target_id``/``target_params``.
Shapes are checked here; whether the secret is right is the login service's question.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voxgate.domain.errors import LoginFailed

__all__ = [
    "AnonymousLogin",
    "LoginParams",
    "PasswordLogin",
    "TokenLogin",
    "parse_login",
    "resumed_session",
    "user_agent",
]

MAX_TOKEN = 8192


@dataclass(frozen=True, slots=True)
class TokenLogin:
    token: str

    def __repr__(self) -> str:  # never print the token
        return "TokenLogin(token=<redacted>)"


@dataclass(frozen=True, slots=True)
class PasswordLogin:
    login: str
    password: str

    def __repr__(self) -> str:
        return f"PasswordLogin(login={self.login!r}, password=<redacted>)"


@dataclass(frozen=True, slots=True)
class AnonymousLogin:
    assistant_id: str
    conversation_id: str | None = None


LoginParams = TokenLogin | PasswordLogin | AnonymousLogin


def parse_login(method: str, params: dict[str, Any]) -> LoginParams | LoginFailed:
    if method == "anonymous_login":
        return _anonymous(params)
    token = params.get("login_token")
    if token:
        if not isinstance(token, str) or len(token) > MAX_TOKEN:
            return LoginFailed("JWT token authentication failed")
        return TokenLogin(token)
    login, password = params.get("login"), params.get("passwd") or params.get("password")
    if not isinstance(login, str) or not isinstance(password, str) or not login or not password:
        return LoginFailed("Login Incorrect")
    if len(login) > 128 or len(password) > 1024:
        return LoginFailed("Login Incorrect")
    return PasswordLogin(login, password)


def _anonymous(params: dict[str, Any]) -> AnonymousLogin | LoginFailed:
    if params.get("target_type") != "ai_assistant":
        return LoginFailed("anonymous_login supports target_type 'ai_assistant' only")
    target = params.get("target_id")
    if not isinstance(target, str) or not target or len(target) > 128:
        return LoginFailed("Unknown AI assistant")
    extra = params.get("target_params")
    conv = extra.get("conversation_id") if isinstance(extra, dict) else None
    return AnonymousLogin(target, conv if isinstance(conv, str) and len(conv) <= 128 else None)


def user_agent(params: dict[str, Any]) -> str:
    """``User-Agent`` is an object (``{"sdkVersion", "data"}``) from the SDK, or a string."""
    ua = params.get("User-Agent")
    if isinstance(ua, dict):
        ua = ua.get("data")
    return ua[:256] if isinstance(ua, str) else ""


def takes_over(params: dict[str, Any]) -> bool:
    """A browser tab taking a session over from another tab of the same app (the browser
    helper's ``shareAcrossTabs``): it holds none of the session's calls yet, so the calls
    still ringing are offered to it again."""
    variables = params.get("userVariables")
    return isinstance(variables, dict) and variables.get("voxgate_takeover") is True


def resumed_session(params: dict[str, Any]) -> str | None:
    """The session a reconnecting SDK asks to resume: ``reconnection: true`` with ``sessid``
    (the SDK sends it while its previous session is under 90 s old)."""
    sessid = params.get("sessid")
    if params.get("reconnection") is not True or not isinstance(sessid, str):
        return None
    return sessid if 0 < len(sessid) <= 64 else None
