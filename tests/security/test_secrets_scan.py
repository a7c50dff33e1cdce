"""Runs last: no API key, password or token the suite created appears in any server log or
error body the suite saw (the suite provokes plenty: bad logins, forgeries, revocations)."""

from __future__ import annotations

from tests.harness import ERROR_BODIES, LOGS, SECRETS


def test_no_secret_in_any_log_or_error_body() -> None:
    secrets = {s for s in SECRETS if s and len(s) >= 8}
    assert secrets, "the scan needs the suite's secrets"
    texts = [p.read_text(errors="replace") for p in LOGS if p.exists()]
    assert texts, "the scan needs server logs"
    leaks = [
        (i, s[:12]) for i, text in enumerate(texts + ERROR_BODIES) for s in secrets if s in text
    ]
    assert not leaks, leaks
