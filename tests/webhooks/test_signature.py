"""The signature: what Loupe sends verifies with the shared secret and the client's helper, and
nothing else does (another secret, a changed body, an old or malformed header)."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from loupe_client import verify_webhook

from apps.webhooks.signing import secret_new, signature

BODY = b'{"event":"version.committed","data":{"version":3}}'


def test_a_signature_verifies_with_the_shared_secret():
    secret, now = secret_new(), int(time.time())
    header = signature(secret, BODY, now)
    assert header.startswith(f"t={now},v1=")
    assert verify_webhook(secret, BODY, header)
    # The documented recipe, by hand: hex HMAC-SHA256 of "<t>.<body>".
    expected = hmac.new(secret.encode(), f"{now}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={now},v1={expected}"


def test_a_signature_fails_with_another_secret_or_a_changed_body():
    secret, now = secret_new(), int(time.time())
    header = signature(secret, BODY, now)
    assert not verify_webhook(secret_new(), BODY, header)
    assert not verify_webhook(secret, BODY.replace(b"3", b"4"), header)
    assert not verify_webhook(secret, BODY + b" ", header)
    # The time is signed too: moving it breaks the signature.
    assert not verify_webhook(secret, BODY, header.replace(f"t={now}", f"t={now + 1}"))


def test_a_stale_or_future_timestamp_fails_within_the_tolerance_it_passes():
    secret, now = secret_new(), int(time.time())
    old = signature(secret, BODY, now - 301)
    assert not verify_webhook(secret, BODY, old)
    assert verify_webhook(secret, BODY, old, tolerance=600)
    assert not verify_webhook(secret, BODY, signature(secret, BODY, now + 400))
    assert verify_webhook(secret, BODY, signature(secret, BODY, 1_000), now=1_100)


@pytest.mark.parametrize(
    "header",
    ["", None, "v1=abc", "t=123", "t=abc,v1=00", "nonsense", "t=,v1="],
)
def test_a_malformed_header_fails(header):
    assert not verify_webhook("whsec_x", BODY, header)


def test_any_of_several_v1_values_may_match():
    secret, now = secret_new(), int(time.time())
    good = signature(secret, BODY, now).split("v1=")[1]
    assert verify_webhook(secret, BODY, f"t={now},v1={'0' * 64},v1={good}")
    assert verify_webhook(secret.encode(), bytearray(BODY), f"t={now},v1={good}")
    assert not verify_webhook(secret, BODY.decode(), f"t={now},v1={good}")  # bytes, not text
