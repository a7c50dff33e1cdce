"""The ``voxgate`` command: serve, and thin people-facing wrappers over the control plane.

``common`` holds the command groups and how a command runs; the other modules add commands.
"""

from __future__ import annotations

from voxgate.cli import keys, operations, records, sip, trunks  # noqa: F401 - they add commands
from voxgate.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    app(prog_name="voxgate")
