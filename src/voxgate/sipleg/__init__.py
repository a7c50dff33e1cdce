"""voxgate's SIP leg: one call leg of the B2BUA towards its Kamailio, sans-I/O.

``leg`` (the state machine; its table in ``states``), ``transactions`` (RFC 3261 17),
``dialog`` (ids, route set, the messages it builds), ``messages`` (parsing and writing, on the
``sipmessage`` library), ``outputs`` (everything that crosses the seam to the adapter),
``causes`` (SIP statuses and hang-up causes), ``dtmf`` (INFO bodies), ``config``.
"""

from voxgate.sipleg import outputs
from voxgate.sipleg.config import LegConfig, RandomIds, SeededIds, Timers
from voxgate.sipleg.leg import InvalidCommand, Leg
from voxgate.sipleg.messages import ParseError, Request, Response, Transport, parse
from voxgate.sipleg.states import Input, Refusal, State

__all__ = [
    "Input",
    "InvalidCommand",
    "Leg",
    "LegConfig",
    "ParseError",
    "RandomIds",
    "Refusal",
    "Request",
    "Response",
    "SeededIds",
    "State",
    "Timers",
    "Transport",
    "outputs",
    "parse",
]
