"""Forged and misused tokens at the live gateway: each refused with -32001, no secret echoed."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import websockets

from tests.harness import Voxgate
from tests.rtc.conftest import Api, api_for
from voxgate.config import Settings
from voxgate.runtime import open_runtime


@pytest.fixture(scope="module")
def vg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Voxgate]:
    server = Voxgate(tmp_path_factory.mktemp("forgery")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(vg: Voxgate) -> Api:
    return api_for(vg)


def signing_key(vg: Voxgate) -> tuple[str, bytes]:
    """The live signing key, read the way an insider with the DB *and* the secret file could."""

    async def load() -> tuple[str, bytes]:
        settings = Settings(
            database_url=vg.cli_env()["VOXGATE_DATABASE_URL"],
            secret_file=Path(vg.cli_env()["VOXGATE_SECRET_FILE"]),
        )
        async with open_runtime(settings) as rt:
            key = rt.control.ring.signing_key()
            return key.kid, key.secret

    return asyncio.run(load())


def claims_for(sub: str, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "aud": "telnyx_telephony",
        "iss": "telnyx_telephony",
        "typ": "access",
        "iat": now,
        "nbf": now - 1,
        "exp": now + 3600,
        "jti": "j",
        "sub": sub,
        "tel_token": "t",
    }
    return {**base, **over}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def login_reply(vg: Voxgate, token: str) -> dict[str, Any]:
    async with websockets.connect(vg.rtc_url, max_size=None) as ws:
        await ws.send(
            json.dumps(
                {"jsonrpc": "2.0", "id": "1", "method": "login", "params": {"login_token": token}}
            )
        )
        return json.loads(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[no-any-return]


Forge = Callable[[Voxgate, Api], str]


def _signed(
    vg: Voxgate,
    claims: dict[str, Any],
    *,
    kid: str | None = None,
    alg: str = "HS512",
    secret: bytes | None = None,
) -> str:
    real_kid, real_secret = signing_key(vg)
    return jwt.encode(
        claims, secret or real_secret, algorithm=alg, headers={"kid": kid or real_kid}
    )


def _cred(api: Api) -> str:
    return str(api.credential()["id"])


CASES: dict[str, Forge] = {
    "alg_none": lambda vg, api: (
        b64(b'{"alg":"none","typ":"JWT"}')
        + "."
        + b64(json.dumps(claims_for(_cred(api))).encode())
        + "."
    ),
    "alg_rs256_confusion": lambda vg, api: (
        b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": signing_key(vg)[0]}).encode())
        + "."
        + b64(json.dumps(claims_for(_cred(api))).encode())
        + "."
        + b64(b"x" * 256)
    ),
    "alg_eddsa_confusion": lambda vg, api: (
        b64(json.dumps({"alg": "EdDSA", "typ": "JWT", "kid": signing_key(vg)[0]}).encode())
        + "."
        + b64(json.dumps(claims_for(_cred(api))).encode())
        + "."
        + b64(b"x" * 64)
    ),
    "hs256_with_real_secret": lambda vg, api: _signed(vg, claims_for(_cred(api)), alg="HS256"),
    "another_key": lambda vg, api: _signed(vg, claims_for(_cred(api)), secret=b"k" * 64),
    "tampered_payload": lambda vg, api: (
        lambda t: (
            t.split(".")[0]
            + "."
            + b64(json.dumps(claims_for(_cred(api))).encode())
            + "."
            + t.split(".")[2]
        )
    )(api.token(_cred(api))),
    "expired": lambda vg, api: _signed(vg, claims_for(_cred(api), exp=int(time.time()) - 5)),
    "nbf_in_the_future": lambda vg, api: _signed(
        vg, claims_for(_cred(api), nbf=int(time.time()) + 600)
    ),
    "wrong_iss": lambda vg, api: _signed(vg, claims_for(_cred(api), iss="evil")),
    "wrong_aud": lambda vg, api: _signed(vg, claims_for(_cred(api), aud="evil")),
    "wrong_typ": lambda vg, api: _signed(vg, claims_for(_cred(api), typ="refresh")),
    "kid_path_injection": lambda vg, api: _signed(
        vg, claims_for(_cred(api)), kid="../../../../etc/passwd"
    ),
    "kid_sql_injection": lambda vg, api: _signed(vg, claims_for(_cred(api)), kid="x' OR '1'='1"),
    "kid_url_injection": lambda vg, api: _signed(
        vg, claims_for(_cred(api)), kid="http://127.0.0.1:1/key"
    ),
    "deleted_credential": lambda vg, api: (
        lambda c: (api.token(c), api.http.delete(f"/telephony_credentials/{c}"))[0]
    )(_cred(api)),
    "deactivated_credential": lambda vg, api: (
        lambda c: (api.token(c), api.post(f"/telephony_credentials/{c}/actions/deactivate"))[0]
    )(_cred(api)),
    "minted_before_revoke_tokens": lambda vg, api: (
        lambda c: (api.token(c), api.post(f"/telephony_credentials/{c}/actions/revoke_tokens"))[0]
    )(_cred(api)),
    "unknown_subject": lambda vg, api: _signed(
        vg, claims_for("00000000-0000-4000-8000-000000000000")
    ),
    "oversized": lambda vg, api: "a" * 20_000 + "." + "b" * 10 + "." + "c",
    "garbage_base64": lambda vg, api: "%%%.$$$.###",
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_forged_token_is_refused(case: str, vg: Voxgate, api: Api) -> None:
    token = await asyncio.to_thread(CASES[case], vg, api)
    reply = await login_reply(vg, token)
    assert reply.get("error", {}).get("code") == -32001, reply
    message = reply["error"]["message"]
    assert token[:40] not in message and len(message) < 200


async def test_expired_credentials_token(vg: Voxgate, api: Api) -> None:
    from datetime import UTC, datetime, timedelta

    cred = api.credential(expires_at=(datetime.now(UTC) + timedelta(seconds=1)).isoformat())
    token = api.token(cred["id"])
    await asyncio.sleep(1.5)
    assert (await login_reply(vg, token))["error"]["code"] == -32001


async def test_retired_key_cannot_vouch_for_another_credential(vg: Voxgate, api: Api) -> None:
    victim = _cred(api)
    old_kid, old_secret = await asyncio.to_thread(signing_key, vg)
    vg.cli("keys", "rotate-signing")
    vg.cli("keys", "retire-signing", old_kid)
    await asyncio.sleep(1.5)  # the server reloads its ring
    forged = jwt.encode(claims_for(victim), old_secret, algorithm="HS512", headers={"kid": old_kid})
    assert (await login_reply(vg, forged))["error"]["code"] == -32001
    fresh = api.token(victim)  # the new key works
    assert "result" in await login_reply(vg, fresh)
