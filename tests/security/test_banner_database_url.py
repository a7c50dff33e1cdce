"""The start banner names the database, but never a password in its URL (logs keep banners):
the CLI command it prints reads that URL from ``VOXGATE_DATABASE_URL`` instead, and works."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import httpx

from tests.harness import SECRETS, Voxgate, create_pg_database, drop_pg_database


def test_a_database_password_stays_out_of_the_banner_and_its_command_works(
    tmp_path: Path,
) -> None:
    password = "pw" + uuid.uuid4().hex  # Postgres here trusts loopback: any password connects
    SECRETS.add(password)
    plain = create_pg_database()
    url = plain.replace("postgres@", f"postgres:{password}@", 1)
    vg = Voxgate(tmp_path, database_url=url).start()
    try:
        banner = vg.log_path.read_text()
        assert password not in banner
        assert "postgres:***@127.0.0.1" in banner
        line = next(ln for ln in banner.splitlines() if "keys create --label me" in ln)
        command = line.split("API key:", 1)[1].strip()
        assert '--database-url "$VOXGATE_DATABASE_URL"' in command
        env = {**os.environ, "VOXGATE_DATABASE_URL": url}
        made = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, env=env
        )
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip()
        auth = {"Authorization": f"Bearer {key}"}
        r = httpx.get(f"{vg.api_url}/v2/telephony_credentials", headers=auth)
        assert r.status_code == 200
    finally:
        vg.stop()
        drop_pg_database(plain)
