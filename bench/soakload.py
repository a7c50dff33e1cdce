"""The soak's load (``bench.loadgen`` modes ``soak`` and ``soak_drain``): the churn a node
meets over hours, paced, every step bounded.

``soak`` repeats, at a fixed pace, a mix of what clients do: log in and close (1000), log in
and drop the socket (the session detaches for the reattach window, then ends), log in and
refresh the token in place, and a call whose caller's socket is cut mid-call and reattached.
``soak_drain`` holds sessions and a call up while the bench sends the node SIGTERM, and says
which close code each socket got.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import time
import uuid
from typing import Any

from bench.loadgen import RawClient, _frame, _logged_in, _login, _login_frame, _until

__all__ = ["MIX", "churn", "drain"]

# One round of ten paced steps: what a fleet of browsers does, in proportion.
MIX = ("close",) * 4 + ("drop",) * 3 + ("refresh",) * 2 + ("call",)
STEP_LIMIT = 30.0  # seconds any one step may take before it counts as an error


async def _refresh(url: str, cred: dict[str, Any]) -> None:
    ws = await _login(url, cred["token"], True)
    ws.send(_login_frame(cred["token2"]))
    reply = await _until(ws, lambda f: "method" not in f)
    ws.close()
    if "result" not in reply:
        raise RuntimeError(f"refresh refused: {str(reply)[:120]}")


async def _call(url: str, caller: dict[str, Any], callee: dict[str, Any]) -> None:
    """A call between two sessions; the caller's socket is cut and reattached mid-call."""
    callee_ws, _ = await _logged_in(url, {"login_token": callee["token"]})
    ws, ready = await _logged_in(url, {"login_token": caller["token"]})
    call_id = str(uuid.uuid4())
    dialog = {"callID": call_id, "destination_number": callee["sip_username"]}
    invite = {"sdp": "v=0", "dialogParams": dialog}
    ws.send(_frame("telnyx_rtc.invite", invite))
    offer = await _until(callee_ws, lambda f: f.get("method") == "telnyx_rtc.invite")
    answer = {"sdp": "v=0", "dialogParams": {"callID": offer["params"]["callID"]}}
    callee_ws.send(_frame("telnyx_rtc.answer", answer))
    await _until(ws, lambda f: f.get("method") == "telnyx_rtc.answer")
    ws.abort()
    resume = {"login_token": caller["token"], "reconnection": True, "sessid": ready["sessid"]}
    ws, again = await _logged_in(url, resume)
    if again["reattached_sessions"] != [call_id]:
        raise RuntimeError(f"not reattached: {again.get('reattached_sessions')}")
    ws.close()  # a deliberate close ends the call: the callee hears the bye
    await _until(callee_ws, lambda f: f.get("method") == "telnyx_rtc.bye")
    callee_ws.close()


async def churn(
    url: str, creds: list[dict[str, Any]], seconds: float, rate: float, concurrency: int
) -> dict[str, Any]:
    """``rate`` steps per second for ``seconds``, by ``concurrency`` workers. Worker ``w`` calls
    from ``creds[2w]`` to ``creds[2w + 1]`` (no other session uses them, so the call rings the
    callee this worker holds); the other credentials log in for everything else."""
    loop = asyncio.get_running_loop()
    start, stop = loop.time(), loop.time() + seconds
    pool = creds[2 * concurrency :]
    done: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    ticket = 0

    async def step(kind: str, w: int, k: int) -> None:
        cred = pool[k % len(pool)]
        if kind == "call":
            await _call(url, creds[2 * w], creds[2 * w + 1])
        elif kind == "refresh":
            await _refresh(url, cred)
        else:
            ws = await _login(url, cred["token"], True)
            ws.close() if kind == "close" else ws.abort()

    async def worker(w: int) -> None:
        nonlocal ticket
        while True:
            k, ticket = ticket, ticket + 1
            due = start + k / rate
            if due >= stop:
                return
            await asyncio.sleep(max(0.0, due - loop.time()))
            kind = MIX[k % len(MIX)]
            try:
                await asyncio.wait_for(step(kind, w, k), STEP_LIMIT)
                done[kind] += 1
            except Exception as exc:
                errors[f"{kind}: {type(exc).__name__}"] += 1

    await asyncio.wait_for(
        asyncio.gather(*(worker(w) for w in range(concurrency))), seconds + 2 * STEP_LIMIT
    )
    await asyncio.sleep(0.5)  # the last polite closes reach the server
    return {
        "seconds": loop.time() - start,
        "steps": dict(done),
        "errors": dict(errors),
        "behind": max(0.0, loop.time() - stop),
    }


async def drain(url: str, tokens: list[str], caller: dict[str, Any], callee: dict[str, Any]) -> Any:
    """Log in a session per token and put a call up, print ``{"held": n}``, wait for a line
    on stdin (the node has been sent SIGTERM and has exited), then count the close codes."""
    socks: list[RawClient] = []
    for first in range(0, len(tokens), 100):
        socks += await asyncio.gather(*(_login(url, t, True) for t in tokens[first : first + 100]))
    callee_ws, _ = await _logged_in(url, {"login_token": callee["token"]})
    ws, _ = await _logged_in(url, {"login_token": caller["token"]})
    dialog = {"callID": str(uuid.uuid4()), "destination_number": callee["sip_username"]}
    ws.send(_frame("telnyx_rtc.invite", {"sdp": "v=0", "dialogParams": dialog}))
    offer = await _until(callee_ws, lambda f: f.get("method") == "telnyx_rtc.invite")
    answer = {"sdp": "v=0", "dialogParams": {"callID": offer["params"]["callID"]}}
    callee_ws.send(_frame("telnyx_rtc.answer", answer))
    await _until(ws, lambda f: f.get("method") == "telnyx_rtc.answer")
    socks += [ws, callee_ws]
    print(json.dumps({"held": len(socks)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    waited = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(s.wait_closed() for s in socks)), 10)
    codes = collections.Counter(str(s.close_code) for s in socks)
    return {"held": len(socks), "codes": dict(codes), "waited": time.monotonic() - waited}
