"""Webhooks: signed JSON deliveries of project events to receivers outside, with retries."""

from __future__ import annotations
