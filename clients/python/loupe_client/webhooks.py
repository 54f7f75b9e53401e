"""Checking that a webhook request came from Loupe: the standard library only, for any receiver.

from loupe_client import verify_webhook

if not verify_webhook(SECRET, request_body_bytes, headers["X-Loupe-Signature"]):
    return 400
"""

from __future__ import annotations

import hashlib
import hmac
import time


def verify_webhook(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    """True when `header` (the X-Loupe-Signature value, `t=<unix seconds>,v1=<hex>`) signs
    exactly `body` (the raw request body, before any JSON parsing) with `secret`, and its time
    is within `tolerance` seconds of now (an old request replayed later fails)."""
    if not header or not isinstance(body, bytes | bytearray):
        return False
    timestamp, signatures = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value.strip().lower())
    if timestamp is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    expected = hmac.new(key, f"{timestamp}.".encode() + bytes(body), hashlib.sha256).hexdigest()
    # Every v1 value is compared: a receiver may be sent more than one during a secret change.
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)
