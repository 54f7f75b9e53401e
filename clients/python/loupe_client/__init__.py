"""The Loupe Python client: log datasets from a notebook or a training script (no Django needed)."""

__version__ = "0.1.0"

from loupe_client.client import Loupe  # noqa: E402 - the modules below read __version__
from loupe_client.errors import ImportRefused, LoupeError, ProductionRefused  # noqa: E402
from loupe_client.records import write_parquet  # noqa: E402
from loupe_client.webhooks import verify_webhook  # noqa: E402

__all__ = [
    "ImportRefused",
    "Loupe",
    "LoupeError",
    "ProductionRefused",
    "__version__",
    "verify_webhook",
    "write_parquet",
]
