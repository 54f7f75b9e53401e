"""The Loupe Python client: log datasets from a notebook or a training script (no Django needed)."""

from apps.client.client import ImportRefused, Loupe, LoupeError

__all__ = ["ImportRefused", "Loupe", "LoupeError"]
