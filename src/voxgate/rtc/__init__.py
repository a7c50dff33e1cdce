"""The sans-I/O signaling core: frames in, outputs out, time as an argument."""

from voxgate.rtc.frames import FrameError, Request, Response, parse_frame
from voxgate.rtc.session import (
    Audit,
    Authenticate,
    Close,
    LoginOutcome,
    Output,
    Register,
    Send,
    Session,
    SessionConfig,
    State,
)

__all__ = [
    "Audit",
    "Authenticate",
    "Close",
    "FrameError",
    "LoginOutcome",
    "Output",
    "Register",
    "Request",
    "Response",
    "Send",
    "Session",
    "SessionConfig",
    "State",
    "parse_frame",
]
