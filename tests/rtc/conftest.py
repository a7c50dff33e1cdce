from __future__ import annotations

import ssl
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.harness import ERROR_BODIES, SECRETS, Voxgate


@dataclass
class Api:
    """Thin REST helper for gateway tests (the SDK itself is exercised in tests/api)."""

    vg: Voxgate
    http: httpx.Client

    def post(self, path: str, json: dict[str, Any] | None = None) -> httpx.Response:
        r = self.http.post(path, json=json)
        r.raise_for_status()
        return r

    def connection(self, **fields: Any) -> dict[str, Any]:
        body = {"connection_name": "gw-" + uuid.uuid4().hex[:6], **fields}
        conn: dict[str, Any] = self.post("/credential_connections", body).json()["data"]
        SECRETS.add(conn["password"])
        return conn

    def credential(self, connection_id: str | None = None, **fields: Any) -> dict[str, Any]:
        connection_id = connection_id or self.connection()["id"]
        return self.post(
            "/telephony_credentials", {"connection_id": connection_id, **fields}
        ).json()["data"]

    def token(self, cred_id: str) -> str:
        token = self.post(f"/telephony_credentials/{cred_id}/token").text
        SECRETS.add(token)
        return token

    def registration(self, connection_id: str) -> dict[str, Any]:
        return self.post(
            f"/credential_connections/{connection_id}/actions/check_registration_status"
        ).json()["data"]

    def audit_kinds(self, cred_id: str) -> list[str]:
        r = self.http.get(f"/telephony_credentials/{cred_id}/audit", params={"page[size]": 250})
        r.raise_for_status()
        return [e["kind"] for e in r.json()["data"]]

    def wait_audit(self, cred_id: str, kind: str, timeout: float = 5.0) -> list[str]:
        """Audit events are written off the signaling path: poll until ``kind`` shows up."""
        import time

        deadline = time.monotonic() + timeout
        while kind not in (kinds := self.audit_kinds(cred_id)):
            assert time.monotonic() < deadline, f"no {kind!r} audit event: {kinds}"
            time.sleep(0.1)
        return kinds


def _keep_errors(response: httpx.Response) -> None:
    if response.status_code >= 400:
        ERROR_BODIES.append(response.read().decode(errors="replace"))


def api_for(vg: Voxgate) -> Api:
    """REST as the test's admin; over https, trusting the server's test CA."""
    http = httpx.Client(
        base_url=vg.base_url,
        headers={"Authorization": f"Bearer {vg.api_key}"},
        event_hooks={"response": [_keep_errors]},
        verify=ssl.create_default_context(cafile=str(vg.ca)) if vg.ca else True,
    )
    return Api(vg, http)


class Receiver:
    """A webhook endpoint on loopback that keeps every delivery (body, headers)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.events: list[tuple[bytes, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.events.append((body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/hooks"
