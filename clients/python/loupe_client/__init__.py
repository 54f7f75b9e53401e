"""The Loupe Python client: log datasets from a notebook or a training script (no Django needed)."""

from loupe_client.client import ImportRefused, Loupe, LoupeError, ProductionRefused
from loupe_client.webhooks import verify_webhook

__all__ = ["ImportRefused", "Loupe", "LoupeError", "ProductionRefused", "verify_webhook"]
