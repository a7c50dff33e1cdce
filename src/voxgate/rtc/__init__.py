"""The sans-I/O signaling core: frames in, outputs out, time as an argument.

``session`` (one state machine per socket, its table in ``states``), ``calls`` and ``legs``
(the call legs a session owns), ``logins`` (typed login params), ``outputs`` (everything that
crosses the seam to the gateway), ``frames`` (JSON-RPC parsing and building).
"""

from voxgate.rtc.frames import FrameError, Request, Response, parse_frame
from voxgate.rtc.logins import AnonymousLogin, LoginParams, PasswordLogin, TokenLogin
from voxgate.rtc.outputs import (
    AssistantMessage,
    Audit,
    Authenticate,
    Close,
    CloseCode,
    Displacement,
    Offer,
    Output,
    Register,
    Relay,
    RouteCall,
    Send,
)
from voxgate.rtc.session import LoginOutcome, Session, SessionConfig
from voxgate.rtc.states import Input, Refusal, State

__all__ = [
    "AnonymousLogin",
    "AssistantMessage",
    "Audit",
    "Authenticate",
    "Close",
    "CloseCode",
    "Displacement",
    "FrameError",
    "Input",
    "LoginOutcome",
    "LoginParams",
    "Offer",
    "Output",
    "PasswordLogin",
    "Refusal",
    "Register",
    "Relay",
    "Request",
    "Response",
    "RouteCall",
    "Send",
    "Session",
    "SessionConfig",
    "State",
    "TokenLogin",
    "parse_frame",
]
