"""Kamailio's configuration, generated from ``Settings`` so that one setting has one name
everywhere: the template (``kamailio.cfg.in``) with this node's ports, domain, hook and
control socket filled in; TLS when voxgate has a certificate; a systemd unit for operators
who run Kamailio as a service (``voxgate sip config DIR``)."""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from voxgate.config import Settings
from voxgate.domain.errors import ConfigurationError

__all__ = ["KAMAILIO_PACKAGES", "KamailioFiles", "contacts_of"]

KAMAILIO_PACKAGES = (
    "kamailio kamailio-websocket-modules kamailio-tls-modules kamailio-utils-modules"
)
MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
TRUNK_TIMEOUT_MS = 4000  # no answer at all from a carrier this long: it is down, the call fails
_SAFE = re.compile(r"^[A-Za-z0-9._:\-\[\]/]+$")  # nothing that could break out of a string


@dataclass(frozen=True, slots=True)
class KamailioFiles:
    dir: Path
    domain: str
    address: str
    sip_port: int
    tls_port: int
    ws_port: int
    hook_port: int
    leg_port: int
    flood_limit: int
    tls_cert: Path | None
    tls_key: Path | None

    @classmethod
    def of(cls, s: Settings, realm: str, directory: Path | None = None) -> KamailioFiles:
        address = s.sip_address or s.host
        files = cls(
            dir=(directory or s.sip_dir).resolve(),
            domain=realm,
            address=address,
            sip_port=s.sip_port,
            tls_port=s.sip_tls_port,
            ws_port=s.sip_ws_port,
            hook_port=s.sip_hook_port,
            leg_port=s.sip_leg_port,
            flood_limit=s.sip_flood_limit,
            tls_cert=s.tls_cert.resolve() if s.tls_cert else None,
            tls_key=s.tls_key.resolve() if s.tls_key else None,
        )
        for name in ("domain", "address"):
            value = getattr(files, name)
            if not _SAFE.match(value):
                raise ConfigurationError(f"--sip-{name} has characters a SIP {name} cannot have")
        return files

    @property
    def config(self) -> Path:
        return self.dir / "kamailio.cfg"

    @property
    def rpc_socket(self) -> Path:
        return self.dir / "kamailio-rpc.sock"

    @property
    def secret_file(self) -> Path:
        return self.dir / "hook.secret"

    @property
    def log(self) -> Path:
        return self.dir / "kamailio.log"

    def argv(self, binary: str) -> list[str]:
        """Foreground, logging to stderr (the warden's log file), its files under ``dir``."""
        return [
            binary,
            "-f",
            str(self.config),
            "-DD",
            "-E",
            "-m",
            "64",
            "-M",
            "8",
            "-Y",
            str(self.dir / "run"),
            "-P",
            str(self.dir / "run" / "kamailio.pid"),
        ]

    def read_secret(self) -> str:
        try:
            return self.secret_file.read_text().strip()
        except OSError:
            raise ConfigurationError(
                f"no hook secret at {self.secret_file}: write the configuration with "
                f"`voxgate sip config {self.dir}` and start Kamailio with it"
            ) from None

    def write(self, binary: str = "kamailio", *, new_secret: bool = True) -> str:
        """Writes the configuration (0600: it holds the hook secret); returns the secret."""
        (self.dir / "run").mkdir(parents=True, exist_ok=True)
        (self.dir / "db").mkdir(exist_ok=True)
        secret = (
            secrets.token_urlsafe(32)
            if new_secret or not self.secret_file.exists()
            else (self.read_secret())
        )
        _write(self.secret_file, secret + "\n")
        _write(self.config, self.render(secret))
        if self.tls_cert is not None:
            _write(self.dir / "tls.cfg", self.render_tls())
        self._seed_location_db()
        return secret

    @property
    def contact_host(self) -> str:
        """Where a carrier we register with sends its calls: our listening address, or the
        SIP domain when we listen on every address."""
        return self.domain if self.address in ("0.0.0.0", "::") else self.address

    def render(self, secret: str) -> str:
        template = resources.files("voxgate.sip").joinpath("kamailio.cfg.in").read_text()
        tls = self.tls_cert is not None
        values = {
            "ADDRESS": self.address,
            "DOMAIN": self.domain,
            "SIP_PORT": str(self.sip_port),
            "TLS_PORT": str(self.tls_port),
            "WS_PORT": str(self.ws_port),
            "HOOK": f"http://127.0.0.1:{self.hook_port}/sip",
            "HOOK_SECRET": secret,
            "LEG_PORT": str(self.leg_port),
            "TRUNK_TIMEOUT": str(TRUNK_TIMEOUT_MS),
            "CONTACT_ADDR": f"{self.contact_host}:{self.sip_port}",
            "RPC_SOCKET": str(self.rpc_socket),
            "DB_DIR": str(self.dir / "db"),
            "TLS_CFG": str(self.dir / "tls.cfg"),
            "MODULES": MODULES,
            "WITH_TLS": "#!define WITH_TLS" if tls else "",
            "WITH_FLOOD": "#!define WITH_FLOOD" if self.flood_limit > 0 else "",
            "FLOOD_LIMIT": str(self.flood_limit),
            "NONCE_SECRET": secrets.token_hex(16),
        }
        return re.sub(r"@([A-Z_]+)@", lambda m: values[m.group(1)], template)

    def render_tls(self) -> str:
        return (
            "[server:default]\n"
            "method = TLSv1.2+\n"
            "verify_certificate = no\n"
            "require_certificate = no\n"
            f"certificate = {self.tls_cert}\n"
            f"private_key = {self.tls_key}\n"
        )

    def _seed_location_db(self) -> None:
        """usrloc keeps its table in db_text files here, so a restarted Kamailio (or one
        restarted with voxgate) still holds the registrations that are valid."""
        schema = Path("/usr/share/kamailio/dbtext/kamailio")
        for table in ("version", "location", "location_attrs", "uacreg"):
            target = self.dir / "db" / table
            if not target.exists() and (schema / table).exists():
                target.write_text((schema / table).read_text())


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def contacts_of(dump: Any) -> list[dict[str, Any]]:
    """The contacts in a ``ul.dump`` answer, flattened for ``Registrar.adopt``."""
    found: list[dict[str, Any]] = []
    now = time.time()
    for domain in (dump or {}).get("Domains", []):
        for aor in domain.get("Domain", {}).get("AoRs", []):
            info = aor.get("Info", {})
            for entry in info.get("Contacts", []):
                c = entry.get("Contact", {})
                socket = str(c.get("Socket", ""))
                expires = c.get("Expires")
                received = str(c.get("Received", ""))
                host = re.search(r"sip:([^:;>]+):(\d+)", received if "sip:" in received else "")
                found.append(
                    {
                        "aor": str(info.get("AoR", "")),
                        "contact": str(c.get("Address", "")),
                        "expires": now + float(expires) if isinstance(expires, int | float) else 0,
                        "transport": socket.split(":", 1)[0] or "udp",
                        "user_agent": str(c.get("User-Agent", "")),
                        "instance": ""
                        if "not set" in str(c.get("Instance"))
                        else str(c.get("Instance") or ""),
                        "address": host.group(1) if host else "",
                        "port": int(host.group(2)) if host else 0,
                        "registered_at": float(c.get("Last-Modified") or now),
                    }
                )
    return found
