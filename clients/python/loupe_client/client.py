"""Client for Loupe's REST API: turns records (or a model's predictions) into one Parquet file,
uploads it (in resumable chunks for datasets) and waits for the import job. Needs requests,
NumPy and pyarrow; never Django (it runs in notebooks and training scripts), and pandas only
when a DataFrame is passed in.
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import requests
import urllib3

from loupe_client.rules import Rules

__version__ = "0.1.0"

Progress = Callable[[str, float], None]

ROW_GROUP_ROWS = 10_000  # the server reads Parquet in batches of this many rows
ROW_GROUP_BYTES = 64 * 1024 * 1024  # fewer rows per group when the vectors are wide
MAX_BACKOFF = 30.0
STRING_COLUMNS = ("id", "label", "split", "text", "image")
VECTOR_COLUMNS = ("embedding", "probs")
FORMAT_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
# Transport failures worth another try: the request may not have reached the server, or its
# answer was lost. Writes are retried only where a repeat is harmless (chunks, see _upload) or
# detected (complete, dataset creation); a model run is sent again only if never received.
TRANSIENT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class LoupeError(Exception):
    """A request failed. `status` is the HTTP status (None when the server was not reached) and
    `detail` the server's answer (its JSON body, or the job of a failed import)."""

    def __init__(self, message: str, *, status: int | None = None, detail: Any = None):
        super().__init__(message)
        self.status = status
        self.detail = detail


class ImportRefused(LoupeError):
    """The server refused the import and changed nothing. `problems` lists the first problems
    found (dicts with row, column, message), `problem_count` how many there were in all."""

    def __init__(self, job: dict):
        self.job = job
        self.problems: list[dict] = list(job.get("problems") or [])
        self.problem_count: int = int(job.get("problem_count") or len(self.problems))
        super().__init__(_refusal_message(job, self.problems, self.problem_count), detail=job)


class ProductionRefused(LoupeError):
    """The server refused a batch of production samples and wrote nothing of it. `problems`
    lists the first problems (row, field, message), rows numbered from 1 within the whole
    call; `problem_count` says how many there were; `appended_before` how many samples of the
    call's earlier batches were appended."""

    def __init__(self, answer: dict, *, offset: int = 0):
        self.problems = [
            {**p, "row": p["row"] + offset if p.get("row") is not None else None}
            for p in answer.get("problems") or []
        ]
        self.problem_count = int(answer.get("problem_count") or len(self.problems))
        self.appended_before = offset
        shown = "; ".join(
            (f"row {p['row']}, " if p.get("row") is not None else "")
            + f"{p.get('field')}: {p.get('message')}"
            for p in self.problems[:3]
        )
        more = f" (and {self.problem_count - 3} more)" if self.problem_count > 3 else ""
        plural = "s" if self.problem_count != 1 else ""
        super().__init__(
            f"Production samples refused, nothing of this batch was written. "
            f"{self.problem_count} problem{plural}: {shown}{more}",
            status=400,
            detail=answer,
        )


def _refusal_message(job: dict, problems: list[dict], count: int) -> str:
    if not problems:
        return f"Import {job.get('id')} failed: {job.get('error') or 'no reason given'}"
    shown = "; ".join(_describe(p) for p in problems[:3])
    more = f" (and {count - 3} more)" if count > 3 else ""
    plural = "s" if count != 1 else ""
    return f"Import refused, nothing was changed. {count} problem{plural}: {shown}{more}"


def _describe(problem: dict) -> str:
    row = problem.get("row")
    where = f"row {row}, " if row is not None else ""
    return f"{where}column {problem.get('column')!r}: {problem.get('message')}"


def _server_message(body: Any) -> str:
    """The server's words from an error body: {"detail": ...} or {field: [messages]}."""
    if isinstance(body, dict):
        if set(body) == {"detail"}:
            return str(body["detail"])
        parts = []
        for field, messages in body.items():
            if isinstance(messages, list):
                messages = " ".join(str(m) for m in messages)
            parts.append(f"{field}: {messages}")
        return "; ".join(parts)
    if isinstance(body, list):
        return " ".join(str(m) for m in body)
    return str(body).strip() or "(no message)"


class Loupe:
    """A connection to one Loupe server as one user (a personal API token).

    >>> lp = Loupe("https://loupe.example.com", token)
    >>> lp.log_dataset("cats-dogs", "reviews", records, embeddings=emb, probs=probs)
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
        url = url.rstrip("/")
        self.url = url
        self.api = url if url.endswith("/api") else f"{url}/api"
        self.timeout = timeout
        self.retries = retries
        self.chunk_bytes = chunk_bytes
        self.backoff = backoff
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Token {token}",
                "Accept": "application/json",
                "User-Agent": f"loupe-client/{__version__}",
            }
        )

    def __repr__(self) -> str:
        return f"Loupe({self.url!r})"  # never the token

    @property
    def rules(self) -> Rules:
        """Rules as code: list, create, dry_run, enable, disable, run, runs, delete."""
        return Rules(self)

    def close(self) -> None:
        """Close the kept-alive connections to the server."""
        # Session.close() only forgets the connection pools (urllib3 2 no longer closes them
        # then): a pool still referenced, say by a response in a kept traceback, would hold its
        # sockets open. Close them outright.
        for adapter in self.session.adapters.values():
            pools = getattr(getattr(adapter, "poolmanager", None), "pools", None)
            for key in list(pools.keys()) if pools is not None else []:
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
        self.session.close()

    def __enter__(self) -> Loupe:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- HTTP -----------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.api}/{path}"

    def _wait_before_retry(self, attempt: int, retry_after: float | None = None) -> None:
        if retry_after is None:
            retry_after = min(MAX_BACKOFF, self.backoff * 2**attempt)
            retry_after *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
        time.sleep(retry_after)

    def _request(
        self,
        method: str,
        path: str,
        *,
        ok: Iterable[int] = (200,),
        json_body: Any = None,
        data: bytes | Callable[[], Any] | None = None,
        headers: dict | None = None,
        params: dict | None = None,
        stream: bool = False,
        idempotent: bool = True,
    ) -> requests.Response:
        """One API call, retried with exponential backoff on transport failures and 5xx;
        other statuses not in `ok` (400, 401, 403, 404, ...) raise LoupeError at once.

        `data` may be a function making the body afresh for each attempt (a stream is used up
        by a failed one). A call that is not idempotent is retried only when the server cannot
        have acted on it: the connection was never made, or it answered 503.
        """
        url = self._url(path)
        ok = tuple(ok)
        attempt = 0
        while True:
            try:
                resp = self.session.request(
                    method,
                    url,
                    json=json_body,
                    data=data() if callable(data) else data,
                    headers=headers,
                    params=params,
                    timeout=self.timeout,
                    stream=stream,
                )
            except requests.exceptions.SSLError as exc:  # a bad certificate stays bad
                raise LoupeError(f"{method} {url} failed: {exc}") from exc
            except TRANSIENT as exc:
                if attempt >= self.retries or not (idempotent or _never_sent(exc)):
                    raise LoupeError(
                        f"{method} {url} failed after {attempt + 1} attempt(s): {exc}"
                    ) from exc
                self._wait_before_retry(attempt)
                attempt += 1
                continue
            retry = resp.status_code >= 500 and (idempotent or resp.status_code == 503)
            if retry and resp.status_code not in ok and attempt < self.retries:
                delay = _retry_after(resp)
                resp.close()
                self._wait_before_retry(attempt, delay)
                attempt += 1
                continue
            if resp.status_code in ok:
                return resp
            raise _http_error(method, url, resp)

    def _json(self, method: str, path: str, **kwargs) -> Any:
        # Closing hands the connection back to the pool even while the answer is still referenced.
        with self._request(method, path, **kwargs) as resp:
            return resp.json()

    def _pages(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Every item of a cursor-paginated list."""
        query = {"page_size": 1000, **(params or {})}
        while True:
            body = self._json("GET", path, params=query)
            yield from body["results"]
            if not body.get("next"):
                return
            # Follow the cursor on our own base URL: behind a proxy `next` may name another host.
            query = dict(parse_qsl(urlsplit(body["next"]).query))

    # --- Projects and datasets ------------------------------------------------------------------

    def projects(self) -> list[dict]:
        """The projects you are a member of (id, slug, name, role, ...)."""
        return list(self._pages("projects/"))

    def project_id(self, project: int | str | Mapping) -> int:
        """A project's id from its id, its slug or the project itself."""
        if isinstance(project, Mapping):
            return int(project["id"])
        if isinstance(project, int) and not isinstance(project, bool):
            return project
        text = str(project)
        projects = self.projects()
        for p in projects:
            if p["slug"] == text:
                return int(p["id"])
        if text.isdigit():
            return int(text)
        slugs = ", ".join(p["slug"] for p in projects) or "none"
        raise LoupeError(f"No project {text!r} among yours ({slugs}).", status=404)

    def datasets(self, project: int | str | Mapping) -> list[dict]:
        """The datasets of a project (by id or slug)."""
        return list(self._pages(f"projects/{self.project_id(project)}/datasets/"))

    def dataset(self, dataset: int | Mapping) -> dict:
        """One dataset, with `counts` of samples by split and label."""
        return self._json("GET", f"datasets/{_id(dataset)}/")

    def _find_dataset(self, project_id: int, name: str) -> dict | None:
        wanted = name.strip()
        return next(
            (d for d in self._pages(f"projects/{project_id}/datasets/") if d["name"] == wanted),
            None,
        )

    def _create_dataset(
        self, project_id: int, name: str, modality: str, labels: Sequence[str] | None
    ) -> dict:
        body = {"name": name, "modality": modality, "labels": list(labels or []), "description": ""}
        try:
            return self._json("POST", f"projects/{project_id}/datasets/", ok=(201,), json_body=body)
        except LoupeError as exc:
            # Made meanwhile by another client, or by our own attempt whose answer was lost.
            if exc.status == 400 and isinstance(exc.detail, dict) and "name" in exc.detail:
                found = self._find_dataset(project_id, name)
                if found is not None:
                    return found
            raise

    # --- Logging a dataset ----------------------------------------------------------------------

    def log_dataset(
        self,
        project: int | str | Mapping,
        name: str,
        records: Any,
        *,
        embeddings: Any = None,
        probs: Any = None,
        modality: str | None = None,
        labels: Sequence[str] | None = None,
        on_duplicate: str = "reject",
        extend_labels: bool = False,
        wait: bool = True,
        poll: float = 1.0,
        wait_timeout: float | None = None,
        progress: Progress | None = None,
    ) -> dict:
        """Import records into the project's dataset `name` (made when missing) as a new version.

        `records`: a list of dicts in the import conventions (`id`, `text` | `image` | feature
        columns, `label`, `split`, `metadata` dict or `meta_<name>` keys), or a pandas DataFrame
        with those columns. `embeddings`: an (n, d) array, one row per record. `probs`: an (n, k)
        array of predicted probabilities in the label schema's order (for a new dataset give
        `labels` in that order; without it the schema is the sorted labels found).
        `modality` and `labels` apply when the dataset is made; the modality is guessed from
        the columns otherwise (text, image, else tabular).

        Returns the import's result (dataset_id, imported, updated, version, model_run_id,
        embedding_space_id, ...), or with wait=False the queued job. Raises ImportRefused, with
        the problems by row and column, when the server refuses the file: nothing changes then.
        `progress(stage, fraction)` hears of the stages "write", "upload" and "import".
        """
        if on_duplicate not in ("reject", "upsert"):
            raise ValueError("on_duplicate must be 'reject' or 'upsert'.")
        report: Progress = progress or (lambda stage, fraction: None)
        source = _Records(records)
        emb = _matrix(embeddings, len(source), "embeddings")
        prob = _matrix(probs, len(source), "probs")
        for given, column in ((emb, "embedding"), (prob, "probs")):
            if given is not None and column in source.columns:
                raise ValueError(f"The records have a {column!r} column; do not pass it again.")
        columns = source.columns + [
            c for c, m in (("embedding", emb), ("probs", prob)) if m is not None
        ]
        # Find the project and dataset first: a wrong token or project fails before the work.
        project_id = self.project_id(project)
        dataset = self._find_dataset(project_id, name)
        if dataset is not None and modality and dataset.get("modality") != modality:
            raise ValueError(
                f"Dataset {name!r} is {dataset.get('modality')}, not {modality}; modality applies "
                "when a dataset is made."
            )
        with tempfile.TemporaryDirectory(prefix="loupe-") as tmp:
            path = Path(tmp) / f"{_file_stem(name)}.parquet"
            write_parquet(
                path, source, embeddings=emb, probs=prob, progress=lambda f: report("write", f)
            )
            if dataset is None:
                dataset = self._create_dataset(
                    project_id, name, modality or guess_modality(columns), labels
                )
            job = self._upload_and_import(
                dataset["id"],
                path,
                fmt="parquet",
                on_duplicate=on_duplicate,
                extend_labels=extend_labels,
                report=report,
            )
        if not wait:
            return job
        job = self.wait_for_import(
            dataset["id"], job["id"], poll=poll, timeout=wait_timeout, progress=progress
        )
        return job["result"]

    def _upload_and_import(
        self,
        dataset_id: int,
        path: Path,
        *,
        fmt: str,
        on_duplicate: str,
        extend_labels: bool,
        report: Progress,
    ) -> dict:
        upload_id = self._upload(dataset_id, path, report=report)
        body = {"format": fmt, "on_duplicate": on_duplicate, "extend_labels": extend_labels}
        try:
            return self._json(
                "POST",
                f"datasets/{dataset_id}/uploads/{upload_id}/complete/",
                ok=(202,),
                json_body=body,
            )
        except LoupeError as exc:
            # A retried complete whose first attempt went through: its job is the newest import
            # of this file.
            messages = exc.detail.get("upload", []) if isinstance(exc.detail, dict) else []
            if exc.status == 400 and any("complete" in str(m) for m in messages):
                page = self._json("GET", f"datasets/{dataset_id}/imports/")
                for job in page["results"]:
                    if job["file_name"] == path.name:
                        return job
            raise

    def _upload(self, dataset_id: int, path: Path, *, report: Progress) -> int:
        """Send the file in chunks. A chunk is retried as it was: the server ignores one it has
        already stored, and answers 409 with its `received` offset to one that does not start
        where it stands, which is where the next chunk starts."""
        size = path.stat().st_size
        upload = self._json(
            "POST",
            f"datasets/{dataset_id}/uploads/",
            ok=(201,),
            json_body={"file_name": path.name, "size": size},
        )
        url = f"datasets/{dataset_id}/uploads/{upload['id']}/"
        offset = int(upload.get("received") or 0)
        stalled = 0
        report("upload", 0.0)
        with path.open("rb") as f:
            while offset < size:
                f.seek(offset)
                chunk = f.read(self.chunk_bytes)
                end = offset + len(chunk)
                with self._request(
                    "PUT",
                    url,
                    ok=(200, 409),
                    data=chunk,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"bytes {offset}-{end - 1}/{size}",
                    },
                ) as resp:
                    answer = resp.json()
                received = int(answer["received"])
                stalled = stalled + 1 if received <= offset else 0
                if stalled > self.retries + 1:
                    raise LoupeError(
                        f"The upload stalls at byte {received} of {size}.",
                        status=resp.status_code,
                        detail=answer,
                    )
                offset = received
                report("upload", min(1.0, offset / size))
        return int(upload["id"])

    def import_job(self, dataset: int | Mapping, job_id: int) -> dict:
        """An import job: status (queued, running, done, failed), percent, result, problems."""
        return self._json("GET", f"datasets/{_id(dataset)}/imports/{job_id}/")

    def wait_for_import(
        self,
        dataset: int | Mapping,
        job_id: int,
        *,
        poll: float = 1.0,
        timeout: float | None = None,
        progress: Progress | None = None,
    ) -> dict:
        """Poll an import job until it is done (returns the job) or failed (ImportRefused)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.import_job(dataset, job_id)
            if progress:
                progress("import", (job.get("percent") or 0) / 100)
            if job["status"] == "done":
                return job
            if job["status"] == "failed":
                raise ImportRefused(job)
            if deadline is not None and time.monotonic() > deadline:
                raise LoupeError(
                    f"Import {job_id} is still {job['status']} after {timeout} s; is a worker running?",
                    detail=job,
                )
            time.sleep(poll)

    # --- Model runs and export ------------------------------------------------------------------

    def log_model_run(
        self,
        dataset: int | Mapping,
        name: str,
        ids: Sequence[Any],
        probs: Any,
        *,
        embeddings: Any = None,
        epoch_probs: Any = None,
        metrics: Mapping | None = None,
        embedding_space: str | None = None,
        wait: bool = True,
        poll: float = 1.0,
        wait_timeout: float | None = None,
        progress: Progress | None = None,
    ) -> dict:
        """Log a model run on samples already in the dataset: `probs` is an (n, k) array of the
        final out-of-sample probabilities for the samples `ids`, in the label schema's order;
        `epoch_probs` optionally an (E, n, k) array (or a list of E (n, k) arrays) of the
        probabilities after each training epoch 1…E; `embeddings` an (n, d) array for the
        embedding space `embedding_space` (default: "default"; with epoch_probs they are
        repeated on every epoch's rows, as the file format wants); `metrics` a JSON object,
        e.g. {"test": {"accuracy": 0.91}}.

        Returns the job's result (model_run_id, embedding_space_id, version, ...), or with
        wait=False the queued job. Raises ImportRefused naming rows and columns (an unknown id,
        probabilities that do not sum to 1, ...) and then nothing is written. The file goes up
        in one request (the server takes model runs as one file, not in chunks).
        """
        report: Progress = progress or (lambda stage, fraction: None)
        ids = list(ids)
        n = len(ids)
        if not n:
            raise ValueError("There are no ids to log a model run for.")
        final = _matrix(probs, n, "probs")
        epochs = [] if epoch_probs is None else list(epoch_probs)
        for e, matrix in enumerate(epochs, start=1):
            epochs[e - 1] = _matrix(matrix, n, f"epoch_probs[{e - 1}]")
            if epochs[e - 1].shape[1] != final.shape[1]:
                raise ValueError(
                    f"epoch_probs[{e - 1}] has {epochs[e - 1].shape[1]} classes; probs has "
                    f"{final.shape[1]}."
                )
        emb = _matrix(embeddings, n, "embeddings")
        if metrics is not None and not isinstance(metrics, Mapping):
            raise ValueError('metrics must be a dict, e.g. {"test": {"accuracy": 0.91}}.')
        dataset_id = _id(dataset)
        with tempfile.TemporaryDirectory(prefix="loupe-") as tmp:
            path = Path(tmp) / f"{_file_stem(name)}.parquet"
            _write_model_run(
                path, ids, [final, *epochs], emb, progress=lambda f: report("write", f)
            )
            fields = {
                "name": name,
                "format": "parquet",
                "metrics": json.dumps(dict(metrics or {}), default=_json_default),
            }
            if embedding_space:
                fields["embedding_space"] = embedding_space
            boundary = f"loupe-{uuid.uuid4().hex}"
            report("upload", 0.0)
            job = self._json(
                "POST",
                f"datasets/{dataset_id}/model-runs/",
                ok=(202,),
                data=lambda: _MultipartBody(boundary, fields, "file", path),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                idempotent=False,  # a second request would log a second run
            )
            report("upload", 1.0)
        if not wait:
            return job
        job = self.wait_for_import(
            dataset_id, job["id"], poll=poll, timeout=wait_timeout, progress=progress
        )
        return job["result"]

    # --- Exploring samples ------------------------------------------------------------------

    def samples(
        self,
        dataset: int | Mapping,
        *,
        q: Mapping | None = None,
        ordering: str | None = None,
        run: int | None = None,
        view: int | None = None,
    ) -> Iterator[dict]:
        """Every sample matching a query, with its tags and the scoring run's scores, in the
        ordering asked for ("-mislabel_score": highest first); pages are fetched as needed.

        `q` is the sample query language (/datasets/query-language/ on the server), e.g.
        {"field": "likely_mislabeled", "op": "=", "value": True}; `view` a saved view's id.
        """
        params: dict[str, Any] = {}
        if q:
            params["q"] = json.dumps(q)
        for name, value in (("ordering", ordering), ("run", run), ("view", view)):
            if value is not None:
                params[name] = value
        yield from self._pages(f"datasets/{_id(dataset)}/samples/", params)

    def tag(
        self,
        dataset: int | Mapping,
        tag: str,
        *,
        q: Mapping | None = None,
        ids: Sequence[int] | None = None,
    ) -> int:
        """Tag every sample matching `q` (or those of `ids` among them); returns how many got
        the tag. Tagging twice changes nothing, so the call is safe to retry."""
        body: dict[str, Any] = {"action": "tag", "tag": tag, "q": dict(q or {})}
        if ids is not None:
            body["ids"] = [int(i) for i in ids]
        return self._json("POST", f"datasets/{_id(dataset)}/samples/bulk/", json_body=body)[
            "changed"
        ]

    # --- Production monitoring ------------------------------------------------------------------

    def append_production(
        self,
        dataset: int | Mapping,
        records: Any,
        *,
        embeddings: Any = None,
        probabilities: Any = None,
        timestamps: Any = None,
        batch_size: int = 1000,
        embedding_space: str | None = None,
        model_run: int | None = None,
        progress: Progress | None = None,
    ) -> dict:
        """Append production samples (what a deployed model saw) in batches of `batch_size`.

        `records`: a list of dicts or a DataFrame in the import conventions, without labels:
        `id`, `text` | `image` | feature columns, `metadata` dict or `meta_<name>` keys, and
        optionally `timestamp`. `embeddings`: an (n, d) array; `probabilities`: an (n, k) array
        in the label schema's order (or a list of {class: p} dicts), kept under the model run
        `model_run` (default: the dataset's newest); `timestamps`: one timezone-aware datetime
        or ISO 8601 string per record, when each was seen (default: now).

        Each batch is all or nothing. A refused batch raises ProductionRefused with its problems
        (rows numbered within the whole call); the batches before it stay appended. A batch
        whose answer was lost is sent again, and counted once. Returns the totals: appended,
        embeddings, predictions, batches.
        """
        if batch_size < 1 or batch_size > PRODUCTION_BATCH_MAX:
            raise ValueError(f"batch_size must be from 1 to {PRODUCTION_BATCH_MAX}.")
        source = _Records(records)
        n = len(source)
        for column in ("label", "split"):
            if column in source.columns:
                raise ValueError(
                    f"Production records have no {column!r}: they are unlabelled, in the "
                    "production split."
                )
        emb = _matrix(embeddings, n, "embeddings")
        probs = probabilities
        if probs is not None and not (
            isinstance(probs, Sequence) and len(probs) and isinstance(probs[0], Mapping)
        ):
            probs = _matrix(probs, n, "probabilities")
        elif probs is not None and len(probs) != n:
            raise ValueError(f"probabilities has {len(probs)} rows for {n} records.")
        stamps = None
        if timestamps is not None:
            stamps = list(timestamps)
            if len(stamps) != n:
                raise ValueError(f"timestamps has {len(stamps)} values for {n} records.")
            stamps = [_timestamp_text(t, f"timestamps[{i}]") for i, t in enumerate(stamps)]
        report: Progress = progress or (lambda stage, fraction: None)
        dataset_id = _id(dataset)
        totals = {"appended": 0, "embeddings": 0, "predictions": 0, "batches": 0}
        report("append", 0.0)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            rows = [
                _production_row(
                    record,
                    index=i,
                    embedding=None if emb is None else emb[i],
                    probabilities=None if probs is None else probs[i],
                    timestamp=None if stamps is None else stamps[i],
                )
                for i, record in zip(range(start, stop), source.slice(start, stop), strict=True)
            ]
            body: dict[str, Any] = {"samples": rows}
            if embedding_space:
                body["embedding_space"] = embedding_space
            if model_run is not None:
                body["model_run"] = int(model_run)
            result = self._append_batch(dataset_id, body, offset=start)
            for key in ("appended", "embeddings", "predictions"):
                totals[key] += int(result.get(key) or 0)
            totals["batches"] += 1
            report("append", stop / n)
        return totals

    def _append_batch(self, dataset_id: int, body: dict, *, offset: int) -> dict:
        """POST one batch. A retry after a lost answer finds every id already there (its first
        attempt went through): that is counted as appended, not as a refusal."""
        path = f"datasets/{dataset_id}/production/"
        data = json.dumps(body, default=_json_default, allow_nan=False).encode()
        headers = {"Content-Type": "application/json"}
        attempt = 0
        while True:
            try:
                with self._request(
                    "POST",
                    path,
                    ok=(201, 400),
                    data=data,
                    headers=headers,
                    idempotent=False,
                ) as resp:
                    status, answer = resp.status_code, resp.json()
            except LoupeError as exc:
                transient = exc.status is None or exc.status >= 500
                if not transient or attempt >= self.retries:
                    raise
                self._wait_before_retry(attempt)
                attempt += 1
                continue
            if status == 201:
                return answer
            problems = answer.get("problems") if isinstance(answer, dict) else None
            if problems is None:
                raise LoupeError(
                    f"400 from POST {path}: {_server_message(answer)}", status=400, detail=answer
                )
            rows = len(body["samples"])
            if (
                attempt
                and answer.get("problem_count") == rows
                and all(p.get("code") == "exists" for p in problems)
            ):
                return {"appended": rows, "embeddings": None, "predictions": None}
            raise ProductionRefused(answer, offset=offset)

    def export_dataset(
        self,
        dataset: int | Mapping,
        path: str | Path,
        *,
        version: int | None = None,
        format: str | None = None,  # noqa: A002 - the API's own word
        embeddings: str | None = None,
    ) -> Path:
        """Download a version (default: the newest) to `path`, streamed. The format comes from
        the file's suffix unless given (parquet, csv or jsonl; Parquet when the suffix says
        nothing). `embeddings` names an embedding space whose vectors to include."""
        path = Path(path)
        fmt = format or FORMAT_SUFFIXES.get(path.suffix.lower(), "parquet")
        params: dict[str, Any] = {"format": fmt}
        if version is not None:
            params["version"] = version
        if embeddings:
            params["embeddings"] = embeddings
        part = path.with_name(path.name + ".part")
        attempt = 0
        while True:
            resp = self._request(
                "GET", f"datasets/{_id(dataset)}/export/", params=params, stream=True
            )
            try:
                with resp, part.open("wb") as f:
                    for block in resp.iter_content(1024 * 1024):
                        f.write(block)
            except TRANSIENT as exc:
                part.unlink(missing_ok=True)
                if attempt >= self.retries:
                    raise LoupeError(f"The export download failed: {exc}") from exc
                self._wait_before_retry(attempt)
                attempt += 1
                continue
            part.replace(path)
            return path


# --- Helpers ------------------------------------------------------------------------------------


def _never_sent(exc: Exception) -> bool:
    """The request cannot have reached the server: connecting failed."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


class _MultipartBody:
    """A multipart/form-data body of text fields and one file, read from disk as it is sent
    (requests would build it in memory). Its length is known, so it goes without chunked
    encoding; it has no tell(), which would make requests think it empty."""

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
        tail = f"\r\n--{boundary}--\r\n".encode()
        self.len = len(head) + path.stat().st_size + len(tail)
        self._parts: list[Any] = [io.BytesIO(head), path.open("rb"), io.BytesIO(tail)]

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
        return out

    def close(self) -> None:
        for part in self._parts:
            part.close()
        self._parts = []


def _write_model_run(
    path: Path,
    ids: list[Any],
    probs_by_epoch: list[np.ndarray],
    embeddings: np.ndarray | None,
    *,
    progress: Callable[[float], None],
) -> None:
    """The model-run file: id, epoch (when there are per-epoch probabilities), probs and
    embedding, one row group at a time; epoch 0 holds the final probabilities."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, k = probs_by_epoch[0].shape
    width = k + (embeddings.shape[1] if embeddings is not None else 0)
    group = max(256, min(ROW_GROUP_ROWS, ROW_GROUP_BYTES // (4 * width + 1)))
    with_epochs = len(probs_by_epoch) > 1
    fields = [pa.field("id", pa.string())]
    if with_epochs:
        fields.append(pa.field("epoch", pa.int64()))
    fields.append(pa.field("probs", pa.list_(pa.float32(), k)))
    if embeddings is not None:
        fields.append(pa.field("embedding", pa.list_(pa.float32(), embeddings.shape[1])))
    schema = pa.schema(fields)
    total = n * len(probs_by_epoch)
    done = 0
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for epoch, probs in enumerate(probs_by_epoch):
            for start in range(0, n, group):
                stop = min(n, start + group)
                arrays = [pa.array([_as_text(i) for i in ids[start:stop]], type=pa.string())]
                if with_epochs:
                    arrays.append(pa.array(np.full(stop - start, epoch, dtype=np.int64)))
                arrays.append(_fixed_size_list(probs[start:stop]))
                if embeddings is not None:
                    arrays.append(_fixed_size_list(embeddings[start:stop]))
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                done += stop - start
                progress(done / total)


PRODUCTION_BATCH_MAX = 10_000  # the server's limit per request
PRODUCTION_KEYS = ("id", "text", "image", "timestamp")


def _timestamp_text(value: Any, where: str) -> str:
    """`where` names the value in an error: "timestamps[3]", "records[3]['timestamp']"."""
    if isinstance(value, str):
        return value
    if hasattr(value, "isoformat") and hasattr(value, "utcoffset"):  # datetime, pandas Timestamp
        if value.utcoffset() is None:
            raise ValueError(f"{where} has no timezone: give aware datetimes (e.g. tz=UTC).")
        return value.isoformat()
    raise ValueError(f"{where} is a {type(value).__name__}, not a datetime or text.")


def _production_row(
    record: Mapping, *, index: int, embedding: Any, probabilities: Any, timestamp: str | None
) -> dict:
    """A record in the import conventions as a row of the production API: id and content,
    feature columns gathered under `fields`, `meta_<name>` keys under `metadata`."""
    row: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for key, value in record.items():
        if key in PRODUCTION_KEYS:
            if not _missing(value):
                row[key] = (
                    _timestamp_text(value, f"records[{index}]['timestamp']")
                    if key == "timestamp"
                    else _as_text(value)
                )
        elif key == "metadata":
            if isinstance(value, str):
                value = json.loads(value)
            if not _missing(value):
                metadata.update(dict(value))
        elif key.startswith("meta_"):
            metadata[key[len("meta_") :]] = _plain_value(value)
        elif key == "embedding":
            row["embedding"] = None if _missing(value) else _vector_values(value).tolist()
        elif key in ("probs", "probabilities"):
            if isinstance(value, Mapping):
                row["probabilities"] = dict(value)
            elif not _missing(value):
                row["probabilities"] = _vector_values(value).tolist()
        else:
            fields[key] = _plain_value(value)
    if fields:
        row["fields"] = fields
    if metadata:
        row["metadata"] = metadata
    if embedding is not None:
        row["embedding"] = np.asarray(embedding, dtype=np.float64).tolist()
    if probabilities is not None:
        row["probabilities"] = (
            dict(probabilities)
            if isinstance(probabilities, Mapping)
            else np.asarray(probabilities, dtype=np.float64).tolist()
        )
    if timestamp is not None:
        row["timestamp"] = timestamp
    return row


def _plain_value(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _id(obj: int | Mapping) -> int:
    return int(obj["id"]) if isinstance(obj, Mapping) else int(obj)


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After", "")
    try:
        return min(MAX_BACKOFF, max(0.0, float(value)))
    except ValueError:
        return None


def _http_error(method: str, url: str, resp: requests.Response) -> LoupeError:
    with resp:  # the error's traceback keeps `resp` alive: let go of its connection now
        try:
            body = resp.json()
        except ValueError:
            body = resp.text[:500]
    return LoupeError(
        f"{resp.status_code} {resp.reason} from {method} {urlsplit(url).path}: "
        f"{_server_message(body)}",
        status=resp.status_code,
        detail=body,
    )


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "dataset"


def guess_modality(columns: Sequence[str]) -> str:
    """As the server guesses: a `text` column makes a text dataset, `image` an image one."""
    if "text" in columns:
        return "text"
    if "image" in columns:
        return "image"
    return "tabular"


def _matrix(values: Any, n: int, name: str) -> np.ndarray | None:
    """An (n, d) array, not yet converted to float32: chunks are converted as they are written."""
    if values is None:
        return None
    array = np.asarray(values)
    if array.ndim != 2 or array.shape[0] != n or array.shape[1] == 0:
        raise ValueError(
            f"{name} must be an (n, d) array with one row per record ({n}); got shape {array.shape}."
        )
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must hold numbers, not {array.dtype}.")
    return array


class _Records:
    """A list of dicts or a DataFrame, read in slices of plain dicts."""

    def __init__(self, records: Any):
        pandas = sys.modules.get("pandas")  # a DataFrame means pandas is imported already
        self.frame = None
        if pandas is not None and isinstance(records, pandas.DataFrame):
            self.frame = records
            self.columns = [str(c) for c in records.columns]
            if len(set(self.columns)) != len(self.columns):
                raise ValueError("The DataFrame has duplicate column names.")
            self.rows: Sequence[Mapping] = ()
        else:
            if isinstance(records, Mapping | str | bytes):
                raise TypeError("Give records as a list of dicts or a pandas DataFrame.")
            self.rows = records if isinstance(records, Sequence) else list(records)
            seen: dict[str, None] = {}
            for i, row in enumerate(self.rows):
                if not isinstance(row, Mapping):
                    raise TypeError(f"Record {i} is a {type(row).__name__}, not a dict.")
                for key in row:
                    if not isinstance(key, str):
                        raise TypeError(f"Record {i} has a key {key!r} that is not a string.")
                    seen.setdefault(key, None)
            self.columns = list(seen)
        if not len(self):
            raise ValueError("There are no records to log.")
        if "id" not in self.columns:
            raise ValueError("The records need an 'id' each.")

    def __len__(self) -> int:
        return len(self.frame) if self.frame is not None else len(self.rows)

    def slice(self, start: int, stop: int) -> Sequence[Mapping]:
        if self.frame is None:
            return self.rows[start:stop]
        part = self.frame.iloc[start:stop]
        return [dict(zip(self.columns, row, strict=True)) for row in part.itertuples(index=False)]


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return False


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _kind(value: Any) -> str:
    if _missing(value):
        return "null"
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, float | np.floating):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Mapping | list | tuple | np.ndarray):
        return "json"
    return "str"


def _resolve_kind(kinds: set[str]) -> str:
    kinds = kinds - {"null"}
    if not kinds:
        return "str"
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds <= {"bool", "int"}:
        return "int"
    if kinds <= {"bool", "int", "float"}:
        return "float"
    return "str"  # mixed: text is the one type every value can take


def _as_text(value: Any) -> str | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple | np.ndarray):
        return json.dumps(value, default=_json_default)
    return str(value.item() if isinstance(value, np.generic) else value)


def _as_metadata(value: Any) -> str | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        return value  # JSON text already
    if isinstance(value, Mapping):
        value = dict(value)
    return json.dumps(value, default=_json_default)


def _converter(kind: str) -> Callable[[Any], Any]:
    scalar = {"bool": bool, "int": int, "float": float}.get(kind)
    if scalar is None:
        return _as_text
    return lambda v: None if _missing(v) else scalar(v)


def _vector_values(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return np.asarray(value, dtype=np.float32).ravel()


def _fixed_size_list(matrix: np.ndarray):
    import pyarrow as pa

    flat = np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), matrix.shape[1])


def write_parquet(
    path: str | Path,
    records: Any,
    *,
    embeddings: Any = None,
    probs: Any = None,
    progress: Callable[[float], None] | None = None,
) -> int:
    """Write records (and aligned embeddings / probs arrays) as one Parquet file in the import
    conventions, a row group at a time so memory stays bounded. Returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = records if isinstance(records, _Records) else _Records(records)
    n = len(source)
    emb = _matrix(embeddings, n, "embeddings") if embeddings is not None else None
    prob = _matrix(probs, n, "probs") if probs is not None else None
    width = sum(m.shape[1] for m in (emb, prob) if m is not None)
    group = max(256, min(ROW_GROUP_ROWS, ROW_GROUP_BYTES // (4 * width + 1)))

    # One pass to fix every column's type: Arrow would guess per row group, and a column that
    # is empty in one group and numbers in the next must not change type between them.
    other = [c for c in source.columns if c not in (*STRING_COLUMNS, "metadata", *VECTOR_COLUMNS)]
    kinds: dict[str, set[str]] = {c: set() for c in other}
    if other:
        for start in range(0, n, group):
            for row in source.slice(start, start + group):
                for column in other:
                    kinds[column].add(_kind(row.get(column)))
    arrow_types = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64()}
    fields = []
    converters: dict[str, Callable[[Any], Any]] = {}
    for column in source.columns:
        if column in VECTOR_COLUMNS:
            fields.append(pa.field(column, pa.list_(pa.float32())))
            converters[column] = _vector_values
        elif column == "metadata":
            fields.append(pa.field(column, pa.string()))
            converters[column] = _as_metadata
        elif column in STRING_COLUMNS:
            fields.append(pa.field(column, pa.string()))
            converters[column] = _as_text
        else:
            kind = _resolve_kind(kinds[column])
            fields.append(pa.field(column, arrow_types.get(kind, pa.string())))
            converters[column] = _converter(kind)
    given = {"embedding": emb, "probs": prob}
    for column, matrix in given.items():
        if matrix is not None:
            fields.append(pa.field(column, pa.list_(pa.float32(), matrix.shape[1])))
    schema = pa.schema(fields)

    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for start in range(0, n, group):
            stop = min(n, start + group)
            rows = source.slice(start, stop)
            arrays = []
            for f in schema:
                matrix = given.get(f.name)
                if matrix is not None and f.name not in source.columns:
                    arrays.append(_fixed_size_list(matrix[start:stop]))
                else:
                    convert = converters[f.name]
                    arrays.append(pa.array([convert(r.get(f.name)) for r in rows], type=f.type))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=group)
            if progress:
                progress(stop / n)
    return n
