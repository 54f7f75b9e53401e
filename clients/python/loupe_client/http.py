"""HTTP for the client: requests sessions whose failed attempts urllib3's `Retry` repeats."""

from __future__ import annotations

import io
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ProtocolError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from loupe_client.errors import LoupeError, http_error

MAX_BACKOFF = 30.0
PAGE_SIZE = 1000
SERVER_ERRORS = frozenset(range(500, 600))
# Streamed downloads fail while the body is read, after urllib3 has handed the answer over.
TRANSIENT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class _Retry(Retry):
    """urllib3's Retry, waiting no longer than MAX_BACKOFF even when a server's Retry-After
    asks for more: a training script is better told the server is down than left hanging."""

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(MAX_BACKOFF, after)


def retry_policy(retries: int, backoff: float, *, idempotent: bool) -> Retry:
    """How failed attempts are repeated, with exponential backoff and jitter.

    Every method may be repeated (`allowed_methods=None`): the caller says whether a request
    is safe to send again (`idempotent`), not its verb — a chunk PUT and a tag POST are, a
    model-run POST is not. A request that is not idempotent is repeated only when the server
    cannot have acted on it: connecting failed, or it answered 503. A bad certificate stays
    bad (`other=0`). When the tries run out, the last 5xx comes back as an answer
    (`raise_on_status=False`) so its status and detail reach the LoupeError.
    """
    return _Retry(
        total=retries,
        connect=retries,
        read=retries if idempotent else 0,
        status=retries,
        other=0,
        allowed_methods=None,
        status_forcelist=SERVER_ERRORS if idempotent else frozenset({503}),
        backoff_factor=backoff,
        backoff_max=MAX_BACKOFF,
        backoff_jitter=backoff / 2,
        raise_on_status=False,
    )


def _session(headers: Mapping[str, str], retry: Retry) -> requests.Session:
    session = requests.Session()
    session.headers.update(headers)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _reason(exc: requests.RequestException) -> str:
    """What went wrong, without urllib3's wrapping ("Max retries exceeded with url ...")."""
    cause = exc.args[0] if exc.args else exc
    if isinstance(cause, MaxRetryError) and cause.reason is not None:
        return str(cause.reason)
    return str(exc)


class Http:
    """The API of one Loupe server as one user: requests, JSON answers, paginated lists."""

    def __init__(
        self, url: str, token: str, *, timeout: float, retries: int, backoff: float, agent: str
    ):
        url = url.rstrip("/")
        self.url = url
        self.api = url if url.endswith("/api") else f"{url}/api"
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        headers = {
            "Authorization": f"Token {token}",
            "Accept": "application/json",
            "User-Agent": agent,
        }
        # Two sessions because urllib3 takes its retry policy from the adapter, not the request.
        self.session = _session(headers, retry_policy(retries, backoff, idempotent=True))
        self._once = _session(headers, retry_policy(retries, backoff, idempotent=False))
        self._once.headers = self.session.headers  # one set of headers for both

    def address(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.api}/{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        ok: Collection[int] = (200,),
        json_body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        idempotent: bool = True,
    ) -> requests.Response:
        """One API call; urllib3 repeats it after transport failures and 5xx (see
        retry_policy), other statuses not in `ok` (400, 401, 403, 404, ...) raise LoupeError.

        `data` may be bytes or a file-like body that can seek back to its start, for a repeat.
        """
        url = self.address(path)
        session = self.session if idempotent else self._once
        try:
            resp = session.request(
                method,
                url,
                json=json_body,
                data=data,
                headers=dict(headers) if headers else None,
                params=dict(params) if params else None,
                timeout=self.timeout,
                stream=stream,
            )
        except requests.RequestException as exc:
            raise LoupeError(f"{method} {url} failed: {_reason(exc)}") from exc
        if resp.status_code in ok:
            return resp
        raise http_error(method, url, resp)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        # Closing hands the connection back to the pool even while the answer is still referenced.
        with self.request(method, path, **kwargs) as resp:
            return resp.json()

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Every item of a cursor-paginated list, fetched a page at a time."""
        query: dict[str, Any] = {"page_size": PAGE_SIZE, **(params or {})}
        while True:
            body = self.json("GET", path, params=query)
            yield from body["results"]
            if not body.get("next"):
                return
            # Follow the cursor on our own base URL: behind a proxy `next` may name another host.
            query = dict(parse_qsl(urlsplit(body["next"]).query))

    def download(
        self,
        path: str,
        params: Mapping[str, Any],
        to: Path,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        """Stream a file from the API to `to`, through `to`.part so a broken download leaves
        no half file. `progress(bytes so far)` is told after each block.

        urllib3 retries until the answer's headers arrive; a body that breaks off later is out
        of its reach, so the download starts again, within the same retry budget and backoff.
        """
        part = to.with_name(to.name + ".part")
        retry = retry_policy(self.retries, self.backoff, idempotent=True)
        while True:
            resp = self.request("GET", path, params=params, stream=True)
            done = 0
            try:
                with resp, part.open("wb") as f:
                    for block in resp.iter_content(1024 * 1024):
                        f.write(block)
                        done += len(block)
                        if progress:
                            progress(done)
            except TRANSIENT as exc:
                part.unlink(missing_ok=True)
                try:
                    retry = retry.increment("GET", path, error=ProtocolError(str(exc)))
                except MaxRetryError:
                    raise LoupeError(f"The download failed: {exc}") from exc
                retry.sleep()
                continue
            part.replace(to)
            return to

    def close(self) -> None:
        """Close the kept-alive connections to the server."""
        for session in (self.session, self._once):
            # Session.close() only forgets the connection pools (urllib3 2 no longer closes
            # them then): a pool still referenced, say by a response in a kept traceback, would
            # hold its sockets open. Close them outright.
            for adapter in session.adapters.values():
                pools: Any = getattr(getattr(adapter, "poolmanager", None), "pools", None)
                for key in list(pools.keys()) if pools is not None else []:
                    pool = pools.get(key)
                    if pool is not None:
                        pool.close()
            session.close()


class MultipartFile:
    """A multipart/form-data body of text fields and one file, read from disk as it is sent
    (requests would build it in memory). Its length is known, so it goes without chunked
    encoding; it can seek back to its start, so urllib3 can send it again on a retry."""

    def __init__(self, boundary: str, fields: Mapping[str, str], file_field: str, path: Path):
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
            + str(value).encode()
            + b"\r\n"
            for key, value in fields.items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self._head = head
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self._path = path
        self.len = len(head) + path.stat().st_size + len(self._tail)
        self._position = 0
        self._parts: list[BinaryIO] = self._open()

    def _open(self) -> list[BinaryIO]:
        return [io.BytesIO(self._head), self._path.open("rb"), io.BytesIO(self._tail)]

    def __len__(self) -> int:
        return self.len

    def __iter__(self) -> Iterator[bytes]:
        while block := self.read(1024 * 1024):
            yield block

    def read(self, size: int = -1) -> bytes:
        out = b""
        while self._parts and (size < 0 or len(out) < size):
            chunk = self._parts[0].read(-1 if size < 0 else size - len(out))
            if chunk:
                out += chunk
            else:
                self._parts.pop(0).close()
        self._position += len(out)
        return out

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset < 0:
            raise io.UnsupportedOperation("MultipartFile seeks only from its start.")
        self.close()
        self._parts = self._open()
        self._position = 0
        while self._position < offset and self.read(min(offset - self._position, 1024 * 1024)):
            pass
        return self._position

    def close(self) -> None:
        for part in self._parts:
            part.close()
        self._parts = []
