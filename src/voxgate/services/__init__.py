"""Use cases shared by the REST API, the CLI and the gateway."""

from voxgate.services.control import ControlPlane
from voxgate.services.logins import LoginService

__all__ = ["ControlPlane", "LoginService"]
