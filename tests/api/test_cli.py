"""The people-facing CLI, run as a subprocess against the same database a live server uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import jwt

from tests.harness import Voxgate


def test_cli_end_to_end(server: Voxgate) -> None:
    key = server.cli("keys", "create", "--label", "ops").stdout.strip()
    assert key.startswith("KEYvx") and len(key) > 40
    assert (
        httpx.get(
            f"{server.base_url}/telephony_credentials", headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 200
    )

    conn = json.loads(server.cli("connections", "create", "--name", "cli-conn").stdout)
    assert conn["record_type"] == "credential_connection" and len(conn["password"]) >= 8
    assert any(c["id"] == conn["id"] for c in json.loads(server.cli("connections", "list").stdout))

    cred = json.loads(
        server.cli(
            "credentials",
            "create",
            "--connection-id",
            conn["id"],
            "--name",
            "alice",
            "--tag",
            "cli",
        ).stdout
    )
    assert cred["sip_username"].startswith("gencred") and cred["sip_password"]
    listed = json.loads(server.cli("credentials", "list", "--tag", "cli").stdout)
    assert [c["id"] for c in listed] == [cred["id"]] and "sip_password" not in listed[0]

    token = server.cli("tokens", "create", cred["id"]).stdout.strip()
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == cred["id"]

    assert (
        server.cli("credentials", "deactivate", cred["id"]).stdout.strip()
        == f"deactivated {cred['id']}"
    )
    assert (
        server.cli("credentials", "activate", cred["id"]).stdout.strip()
        == f"activated {cred['id']}"
    )
    kinds = [e["kind"] for e in json.loads(server.cli("audit", cred["id"]).stdout)]
    assert kinds.count("token_minted") == 1 and "revoked" in kinds
    assert server.cli("credentials", "delete", cred["id"]).stdout.strip() == f"deleted {cred['id']}"

    bot = json.loads(server.cli("assistants", "create", "--name", "Echo").stdout)
    assert bot["id"].startswith("assistant-") and bot["kind"] == "echo"
    assert any(a["id"] == bot["id"] for a in json.loads(server.cli("assistants", "list").stdout))


def test_cli_errors_are_one_line_and_nonzero(server: Voxgate) -> None:
    missing = server.cli("tokens", "create", "no-such-credential", check=False)
    assert missing.returncode == 1 and missing.stderr.strip().startswith("error:")
    assert len(missing.stderr.strip().splitlines()) == 1
    bad = server.cli(
        "credentials", "create", "--connection-id", "123", "--expires-at", "yesterday", check=False
    )
    assert bad.returncode == 1 and "connection_id" in bad.stderr
    kind = server.cli("assistants", "create", "--name", "x", "--kind", "nope", check=False)
    assert kind.returncode == 1 and "kind must be one of" in kind.stderr


def test_key_rotation_from_the_cli_reaches_the_running_server(server: Voxgate) -> None:
    h = {"Authorization": f"Bearer {server.api_key}"}
    conn = httpx.post(
        f"{server.base_url}/credential_connections", json={"connection_name": "rot"}, headers=h
    ).json()["data"]
    cred = httpx.post(
        f"{server.base_url}/telephony_credentials", json={"connection_id": conn["id"]}, headers=h
    ).json()["data"]
    new_kid = server.cli("keys", "rotate-signing").stdout.strip()
    kids = {k["kid"] for k in json.loads(server.cli("keys", "list-signing").stdout)}
    assert new_kid in kids
    # the CLI mints with the new key at once; the server picks it up for verification
    token = server.cli("tokens", "create", cred["id"]).stdout.strip()
    assert jwt.get_unverified_header(token)["kid"] == new_kid
    from websockets.sync.client import connect

    with connect(server.rtc_url) as ws:
        ws.send(
            json.dumps(
                {"jsonrpc": "2.0", "id": "1", "method": "login", "params": {"login_token": token}}
            )
        )
        assert "result" in json.loads(ws.recv(timeout=5))


def test_shared_options_come_before_the_command(server: Voxgate, tmp_path: Path) -> None:
    """``voxgate --database-url URL --secret-file PATH COMMAND``: one place for both options,
    honoured by every command (the server's own env is not used here)."""
    env = {k: v for k, v in server.cli_env().items() if not k.startswith("VOXGATE_")}
    db, secret = tmp_path / "other.db", tmp_path / "other.secret"
    base = [sys.executable, "-m", "voxgate", "--database-url", f"sqlite+aiosqlite:///{db}"]
    base += ["--secret-file", str(secret)]
    absent = subprocess.run(
        [*base, "keys", "list-signing"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert absent.returncode == 1 and f"no voxgate database at {db}" in absent.stderr
    assert not db.exists()  # never an empty database made on the side
    made = subprocess.run(
        [*base, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "(current)" in made.stdout
    run = subprocess.run(
        [*base, "keys", "list-signing"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert db.exists() and secret.exists() and not (tmp_path / "voxgate.db").exists()
    listed = json.loads(run.stdout)
    assert len(listed) == 1 and listed[0]["signing"] is True
    # the same kid from a second command: both read the store the options named
    again = subprocess.run(
        [*base, "keys", "list-signing"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert json.loads(again.stdout) == listed
