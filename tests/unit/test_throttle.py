from voxgate.auth.passwords import Passwords
from voxgate.auth.throttle import LoginThrottle


def test_backoff_grows_then_locks_out_and_success_resets() -> None:
    t = LoginThrottle(free_failures=3, base_delay=1.0, lockout_after=6, lockout=900)
    keys = ("user:a", "addr:1.2.3.4")
    for _ in range(3):
        t.failure(keys, 100.0)
    assert t.retry_after(keys, 100.0) == 0
    t.failure(keys, 100.0)
    assert t.retry_after(keys, 100.0) == 1.0
    t.failure(keys, 101.0)
    assert t.retry_after(keys, 101.0) == 2.0
    t.failure(keys, 103.0)
    assert t.retry_after(keys, 103.0) == 900.0  # locked out
    assert t.retry_after(("user:b", "addr:1.2.3.4"), 103.0) == 900.0  # same address, other user
    assert t.retry_after(("user:b", "addr:5.6.7.8"), 103.0) == 0
    t.success(keys)
    assert t.retry_after(keys, 103.0) == 0


def test_passwords_verify_and_unknown_user_costs_a_hash() -> None:
    p = Passwords()
    stored = p.hash("s3cret-pass")
    assert p.verify(stored, "s3cret-pass")
    assert not p.verify(stored, "wrong")
    assert not p.verify(None, "s3cret-pass")
    assert not p.verify("not-a-hash", "x")
