"""The client's errors: a failed request, and the server refusing an import or production samples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests


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

    def __init__(self, job: Mapping[str, Any]):
        self.job = job
        self.problems: list[dict[str, Any]] = list(job.get("problems") or [])
        self.problem_count: int = int(job.get("problem_count") or len(self.problems))
        super().__init__(_refusal_message(job, self.problems, self.problem_count), detail=job)


class ProductionRefused(LoupeError):
    """The server refused a batch of production samples and wrote nothing of it. `problems`
    lists the first problems (row, field, message), rows numbered from 1 within the whole
    call; `problem_count` says how many there were; `appended_before` how many samples of the
    call's earlier batches were appended."""

    def __init__(self, answer: Mapping[str, Any], *, offset: int = 0):
        self.problems: list[dict[str, Any]] = [
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


def _refusal_message(job: Mapping[str, Any], problems: list[dict[str, Any]], count: int) -> str:
    if not problems:
        return f"Import {job.get('id')} failed: {job.get('error') or 'no reason given'}"
    shown = "; ".join(_describe(p) for p in problems[:3])
    more = f" (and {count - 3} more)" if count > 3 else ""
    plural = "s" if count != 1 else ""
    return f"Import refused, nothing was changed. {count} problem{plural}: {shown}{more}"


def _describe(problem: Mapping[str, Any]) -> str:
    row = problem.get("row")
    where = f"row {row}, " if row is not None else ""
    return f"{where}column {problem.get('column')!r}: {problem.get('message')}"


def server_message(body: Any) -> str:
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


def http_error(method: str, url: str, resp: requests.Response) -> LoupeError:
    """The LoupeError for an answer that is not one of those expected."""
    with resp:  # the error's traceback keeps `resp` alive: let go of its connection now
        try:
            body = resp.json()
        except ValueError:
            body = resp.text[:500]
    return LoupeError(
        f"{resp.status_code} {resp.reason} from {method} {urlsplit(url).path}: "
        f"{server_message(body)}",
        status=resp.status_code,
        detail=body,
    )
