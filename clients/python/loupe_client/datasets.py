"""Getting data in and out: logging records or a file as a dataset version (a resumable,
chunked upload and an import job), logging model runs, exporting versions."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from loupe_client.base import ClientBase, ProjectRef, Ref, ref_id
from loupe_client.errors import ImportRefused, LoupeError
from loupe_client.http import MultipartFile
from loupe_client.records import (
    Matrix,
    Records,
    as_matrix,
    file_columns,
    file_stem,
    guess_modality,
    json_default,
    write_model_run,
    write_parquet,
)
from loupe_client.types import ImportJob, ImportResult, Progress

FORMAT_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def _quiet(stage: str, fraction: float) -> None:
    """Progress heard by no one."""


class DatasetsMixin(ClientBase):
    """Datasets, imports, model runs and exports."""

    chunk_bytes: int

    def log_dataset(
        self,
        project: ProjectRef,
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
    ) -> ImportResult | ImportJob:
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
        report: Progress = progress or _quiet
        source = Records(records)
        emb = as_matrix(embeddings, len(source), "embeddings")
        prob = as_matrix(probs, len(source), "probs")
        for given, column in ((emb, "embedding"), (prob, "probs")):
            if given is not None and column in source.columns:
                raise ValueError(f"The records have a {column!r} column; do not pass it again.")
        columns = source.columns + [
            c for c, m in (("embedding", emb), ("probs", prob)) if m is not None
        ]
        # Find the project and dataset first: a wrong token or project fails before the work.
        project_id = self.project_id(project)
        dataset = self.find_dataset(project_id, name)
        if dataset is not None and modality and dataset.get("modality") != modality:
            raise ValueError(
                f"Dataset {name!r} is {dataset.get('modality')}, not {modality}; modality applies "
                "when a dataset is made."
            )
        with tempfile.TemporaryDirectory(prefix="loupe-") as tmp:
            path = Path(tmp) / f"{file_stem(name)}.parquet"
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
        return self.wait_for_import(
            dataset["id"], job["id"], poll=poll, timeout=wait_timeout, progress=progress
        )["result"]

    def import_file(
        self,
        project: ProjectRef,
        dataset: str,
        path: str | Path,
        *,
        format: str | None = None,  # noqa: A002 - the API's own word
        modality: str | None = None,
        labels: Sequence[str] | None = None,
        on_duplicate: str = "reject",
        extend_labels: bool = False,
        columns: dict[str, str] | None = None,
        generate_ids: bool = False,
        wait: bool = True,
        poll: float = 1.0,
        wait_timeout: float | None = None,
        progress: Progress | None = None,
    ) -> ImportResult | ImportJob:
        """Import a file as it is (Parquet, CSV, JSON lines or an archive of images and a
        table, in the import conventions) into the project's dataset `dataset`, made when
        missing, as a new version. The format comes from the suffix unless given; the rest is
        as for log_dataset (the modality of a new dataset is guessed from the file's columns).

        `columns` says what columns whose names do not follow the conventions are, by name:
        id, text, label, split, image, embedding, probs, metadata, feature or ignore (e.g.
        {"Beschreibung": "text", "Kategorie": "label"}). `generate_ids` imports a file without
        an id column: each id is made from the sample's content (its text, image path or
        features), so the same data imported again gets the same ids.
        """
        if on_duplicate not in ("reject", "upsert"):
            raise ValueError("on_duplicate must be 'reject' or 'upsert'.")
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"No file {str(path)!r}.")
        fmt = format or FORMAT_SUFFIXES.get(path.suffix.lower())
        report: Progress = progress or _quiet
        project_id = self.project_id(project)
        found = self.find_dataset(project_id, dataset)
        if found is None:
            if modality is None:
                names = file_columns(path, fmt)
                if names is None:
                    raise ValueError(f"Give the modality of the new dataset {dataset!r}.")
                # A mapped column counts as the role it is mapped to.
                modality = guess_modality([(columns or {}).get(c, c) for c in names])
            found = self._create_dataset(project_id, dataset, modality, labels)
        job = self._upload_and_import(
            found["id"],
            path,
            fmt=fmt,
            on_duplicate=on_duplicate,
            extend_labels=extend_labels,
            report=report,
            columns=columns,
            generate_ids=generate_ids,
        )
        if not wait:
            return job
        return self.wait_for_import(
            found["id"], job["id"], poll=poll, timeout=wait_timeout, progress=progress
        )["result"]

    def _upload_and_import(
        self,
        dataset_id: int,
        path: Path,
        *,
        fmt: str | None,
        on_duplicate: str,
        extend_labels: bool,
        report: Progress,
        columns: dict[str, str] | None = None,
        generate_ids: bool = False,
    ) -> ImportJob:
        upload_id = self._upload(dataset_id, path, report=report)
        body: dict[str, Any] = {"on_duplicate": on_duplicate, "extend_labels": extend_labels}
        if columns:
            body["columns"] = columns
        if generate_ids:
            body["generate_ids"] = True
        if fmt:  # else the server tells by the file's name
            body["format"] = fmt
        try:
            return cast(
                ImportJob,
                self.http.json(
                    "POST",
                    f"datasets/{dataset_id}/uploads/{upload_id}/complete/",
                    ok=(202,),
                    json_body=body,
                ),
            )
        except LoupeError as exc:
            # A retried complete whose first attempt went through: its job is the newest import
            # of this file.
            messages = exc.detail.get("upload", []) if isinstance(exc.detail, dict) else []
            if exc.status == 400 and any("complete" in str(m) for m in messages):
                page = self.http.json("GET", f"datasets/{dataset_id}/imports/")
                for job in page["results"]:
                    if job["file_name"] == path.name:
                        return cast(ImportJob, job)
            raise

    def _upload(self, dataset_id: int, path: Path, *, report: Progress) -> int:
        """Send the file in chunks. A chunk is retried as it was: the server ignores one it has
        already stored, and answers 409 with its `received` offset to one that does not start
        where it stands, which is where the next chunk starts."""
        size = path.stat().st_size
        upload: dict[str, Any] = self.http.json(
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
                with self.http.request(
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
                if stalled > self.http.retries + 1:
                    raise LoupeError(
                        f"The upload stalls at byte {received} of {size}.",
                        status=resp.status_code,
                        detail=answer,
                    )
                offset = received
                report("upload", min(1.0, offset / size))
        return int(upload["id"])

    def import_job(self, dataset: Ref, job_id: int) -> ImportJob:
        """An import job: status (queued, running, done, failed), percent, result, problems."""
        return cast(
            ImportJob, self.http.json("GET", f"datasets/{ref_id(dataset)}/imports/{job_id}/")
        )

    def wait_for_import(
        self,
        dataset: Ref,
        job_id: int,
        *,
        poll: float = 1.0,
        timeout: float | None = None,
        progress: Progress | None = None,
    ) -> ImportJob:
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

    # --- Model runs and export ----------------------------------------------------------------

    def log_model_run(
        self,
        dataset: Ref,
        name: str,
        ids: Sequence[Any],
        probs: Any,
        *,
        embeddings: Any = None,
        epoch_probs: Any = None,
        metrics: Mapping[str, Any] | None = None,
        embedding_space: str | None = None,
        wait: bool = True,
        poll: float = 1.0,
        wait_timeout: float | None = None,
        progress: Progress | None = None,
    ) -> ImportResult | ImportJob:
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
        report: Progress = progress or _quiet
        ids = list(ids)
        n = len(ids)
        if not n:
            raise ValueError("There are no ids to log a model run for.")
        final = as_matrix(probs, n, "probs")
        if final is None:
            raise ValueError("probs must be an (n, k) array, not None.")
        epochs: list[Matrix] = []
        for e, given in enumerate([] if epoch_probs is None else list(epoch_probs)):
            epoch = as_matrix(given, n, f"epoch_probs[{e}]")
            if epoch is None or epoch.shape[1] != final.shape[1]:
                classes = "no" if epoch is None else epoch.shape[1]
                raise ValueError(
                    f"epoch_probs[{e}] has {classes} classes; probs has {final.shape[1]}."
                )
            epochs.append(epoch)
        emb = as_matrix(embeddings, n, "embeddings")
        if metrics is not None and not isinstance(metrics, Mapping):
            raise ValueError('metrics must be a dict, e.g. {"test": {"accuracy": 0.91}}.')
        dataset_id = ref_id(dataset)
        with tempfile.TemporaryDirectory(prefix="loupe-") as tmp:
            path = Path(tmp) / f"{file_stem(name)}.parquet"
            write_model_run(path, ids, [final, *epochs], emb, progress=lambda f: report("write", f))
            fields: dict[str, str] = {
                "name": name,
                "format": "parquet",
                "metrics": json.dumps(dict(metrics or {}), default=json_default),
            }
            if embedding_space:
                fields["embedding_space"] = embedding_space
            boundary = f"loupe-{uuid.uuid4().hex}"
            report("upload", 0.0)
            body = MultipartFile(boundary, fields, "file", path)
            try:
                job: ImportJob = self.http.json(
                    "POST",
                    f"datasets/{dataset_id}/model-runs/",
                    ok=(202,),
                    data=body,
                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                    idempotent=False,  # a second request would log a second run
                )
            finally:
                body.close()
            report("upload", 1.0)
        if not wait:
            return job
        return self.wait_for_import(
            dataset_id, job["id"], poll=poll, timeout=wait_timeout, progress=progress
        )["result"]

    def export_dataset(
        self,
        dataset: Ref,
        path: str | Path,
        *,
        version: int | None = None,
        format: str | None = None,  # noqa: A002 - the API's own word
        embeddings: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        """Download a version (default: the newest) to `path`, streamed. The format comes from
        the file's suffix unless given (parquet, csv or jsonl; Parquet when the suffix says
        nothing). `embeddings` names an embedding space whose vectors to include;
        `progress(bytes so far)` hears of the download."""
        path = Path(path)
        fmt = format or FORMAT_SUFFIXES.get(path.suffix.lower(), "parquet")
        params: dict[str, Any] = {"format": fmt}
        if version is not None:
            params["version"] = version
        if embeddings:
            params["embeddings"] = embeddings
        return self.http.download(
            f"datasets/{ref_id(dataset)}/export/", params, path, progress=progress
        )
