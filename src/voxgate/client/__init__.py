"""The Python client SDK: log in to a voxgate (or Telnyx-compatible) gateway from asyncio."""

from voxgate.client.call import Call
from voxgate.client.client import Client, ClientError, Event

__all__ = ["Call", "Client", "ClientError", "Event"]
