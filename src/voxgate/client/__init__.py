"""The Python client SDK: log in to a voxgate (or Telnyx-compatible) gateway from asyncio."""

from voxgate.client.client import Client, ClientError, Event

__all__ = ["Client", "ClientError", "Event"]
