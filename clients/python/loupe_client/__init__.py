"""The Loupe Python client: log datasets from a notebook or a training script (no Django needed)."""

from loupe_client.client import Loupe
from loupe_client.errors import ImportRefused, LoupeError, ProductionRefused
from loupe_client.records import write_parquet
from loupe_client.version import __version__
from loupe_client.webhooks import verify_webhook

__all__ = [
    "ImportRefused",
    "Loupe",
    "LoupeError",
    "ProductionRefused",
    "__version__",
    "verify_webhook",
    "write_parquet",
]
