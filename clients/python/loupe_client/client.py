"""The `Loupe` client: one server as one user, made of the parts in the modules beside it."""

from __future__ import annotations

from types import TracebackType

import requests

from loupe_client.datasets import DatasetsMixin
from loupe_client.http import Http
from loupe_client.production import ProductionMixin
from loupe_client.records import guess_modality, write_parquet
from loupe_client.rules import Rules
from loupe_client.samples import SamplesMixin
from loupe_client.scoring import ScoringMixin
from loupe_client.version import __version__

__all__ = ["Loupe", "guess_modality", "write_parquet"]


class Loupe(DatasetsMixin, ScoringMixin, SamplesMixin, ProductionMixin):
    """A connection to one Loupe server as one user (a personal API token).

    >>> lp = Loupe("https://loupe.example.com", token)
    >>> lp.log_dataset("cats-dogs", "reviews", records, embeddings=emb, probs=probs)

    Failed attempts are repeated `retries` times, waiting `backoff` seconds doubled each time
    (see loupe_client.http.retry_policy for which requests may be sent again).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 60,
        retries: int = 5,
        chunk_bytes: int = 8 * 1024 * 1024,
        backoff: float = 0.5,
    ):
        if chunk_bytes < 1:
            raise ValueError("chunk_bytes must be positive.")
        if retries < 0:
            raise ValueError("retries cannot be negative.")
        self.http = Http(
            url,
            token,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            agent=f"loupe-client/{__version__}",
        )
        self.url = self.http.url
        self.api = self.http.api
        self.timeout = timeout
        self.retries = retries
        self.chunk_bytes = chunk_bytes
        self.backoff = backoff

    def __repr__(self) -> str:
        return f"Loupe({self.url!r})"  # never the token

    @property
    def session(self) -> requests.Session:
        """The requests session (its headers are those of every request)."""
        return self.http.session

    @property
    def rules(self) -> Rules:
        """Rules as code: list, create, dry_run, enable, disable, run, runs, delete."""
        return Rules(self.http)

    def close(self) -> None:
        """Close the kept-alive connections to the server."""
        self.http.close()

    def __enter__(self) -> Loupe:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
