"""The official Node ``telnyx`` SDK runs the foundation's REST flow against voxgate."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.harness import Voxgate

HERE = Path(__file__).resolve().parent


def test_node_sdk_rest_flow(server: Voxgate) -> None:
    env = {**os.environ, "TELNYX_BASE_URL": server.base_url, "TELNYX_API_KEY": server.api_key}
    res = subprocess.run(
        ["node", "rest-flow.mjs"], cwd=HERE, env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert all(u.startswith("gencred") for u in out["sipUsernames"]) and out["hasPassword"]
    assert out["pages"] == 3 and out["listedAll"]
    assert (
        out["tokenType"] == "string"
        and out["tokenParts"] == 3
        and out["tokenSub"] == out["credentialId"]
    )
    assert out["notFound"] == {"name": "NotFoundError", "status": 404, "code": "10005"}
    assert (
        out["unprocessable"]["name"] == "UnprocessableEntityError"
        and out["unprocessable"]["status"] == 422
    )
    assert out["unauthenticated"] == {"name": "AuthenticationError", "status": 401, "code": "10009"}
    assert out["registration"] == "Not Registered"
    assert out["policy"] == ["ring_all", "ring_all", 3]
    assert out["onTokenReuse"] == "revoke_token" and out["connPolicy"] == "latest_wins"
