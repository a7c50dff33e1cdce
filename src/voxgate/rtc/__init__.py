"""The sans-I/O signaling core: frames in, outputs out, time as an argument.

``session`` (one state machine per socket, its table in ``states``), ``calls`` and ``legs``
(the call legs a session owns), ``logins`` (typed login params), ``outputs`` (everything that
crosses the seam to the gateway), ``frames`` (JSON-RPC parsing and building).
"""

from voxgate.rtc import outputs
from voxgate.rtc.session import LoginOutcome, Session, SessionConfig
from voxgate.rtc.states import Input, Refusal, State

__all__ = ["Input", "LoginOutcome", "Refusal", "Session", "SessionConfig", "State", "outputs"]
