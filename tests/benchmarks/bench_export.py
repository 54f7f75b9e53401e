"""Sample export benchmark: the streamed export of the sample table (CSV and Parquet) at N rows,
served by gunicorn (one sync worker, DEBUG off) on an embedded database; the worker's peak
resident memory is read from the kernel (VmHWM) after the download, against its resident memory
(VmRSS) just before it.

    python tests/benchmarks/bench_export.py --rows 100000 300000 1000000 --work /tmp/bench-export

Set-up (skipped when --work already holds it): one dataset per size, its samples written by SQL
(a text of 60 to 200 characters, two metadata keys, 10 labels, four splits; no embeddings: the
export reads none), then a done scoring run's rows with random scores and a tag on 1 % of the
samples, as bench_explorer.py writes them. Each export runs in a fresh worker, after one small
export that loads what an export imports (pyarrow). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_explorer import _django, _scores  # noqa: E402
from bench_setup import fresh_database, work_folder  # noqa: E402

COLUMNS = "external_id,split,label,suggested_label,mislabel_score,flags,tags,metadata.source,text"
ORDERING = "-mislabel_score"
LABELS = ["airplane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def setup(work: Path, sizes: list[int]) -> dict:
    state_file = work / "export-state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {"datasets": {}}
    if not state_file.exists():
        env = fresh_database(work)
        state["env"] = {k: env[k] for k in ("LOUPE_VAR_DIR",)}
    os.environ["LOUPE_VAR_DIR"] = state["env"]["LOUPE_VAR_DIR"]
    _django()
    from django.db import connection

    from apps.accounts.models import User
    from apps.datasets.models import Dataset
    from apps.projects.models import Membership, Project

    user = User.objects.get(username="bench")
    project, _ = Project.objects.get_or_create(slug="bench-export", defaults={"name": "Export"})
    Membership.objects.get_or_create(project=project, user=user, defaults={"role": "owner"})
    for rows in sizes:
        if str(rows) in state["datasets"]:
            continue
        dataset, _ = Dataset.objects.get_or_create(
            project=project, name=f"export-{rows}", defaults={"labels": LABELS}
        )
        dataset.samples.all().delete()  # what a run stopped half-way left
        started = time.monotonic()
        with connection.cursor() as cur:
            cur.execute(
                """INSERT INTO datasets_sample (dataset_id, external_id, split, label, first_label,
                       added_in, text, image, metadata, active, created_at)
                   SELECT %s, 'row-' || i, (ARRAY['train','train','validation','test'])[1 + i %% 4],
                          (%s::text[])[1 + i %% 10], NULL, 1,
                          left(repeat(md5(i::text) || ' ', 7), (60 + (i::bigint * 7919) %% 141)::int), '',
                          jsonb_build_object('source', (ARRAY['web','book','mail'])[1 + i %% 3],
                                             'length', (i::bigint * 7919) %% 141),
                          true, now()
                   FROM generate_series(1, %s) AS i""",
                [dataset.pk, LABELS, rows],
            )
        insert_seconds = round(time.monotonic() - started, 1)
        scores_seconds = _scores(dataset)
        state["datasets"][str(rows)] = {
            "id": dataset.pk,
            "insert_seconds": insert_seconds,
            "score_rows_seconds": scores_seconds,
        }
        state_file.write_text(json.dumps(state))
    return state


def _memory(pid: int) -> dict[str, int]:
    """The process's resident memory now and at its peak, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, key: str) -> tuple[int, float]:
    """Download `url`, throwing the bytes away; the bytes and seconds it took."""
    request = Request(url, headers={"Authorization": f"Token {key}"})  # noqa: S310 - our server
    started = time.perf_counter()
    size = 0
    with urlopen(request, timeout=3600) as response:  # noqa: S310 - our server
        while block := response.read(1 << 20):
            size += len(block)
    return size, time.perf_counter() - started


def measure(state: dict, rows: int, fmt: str, key: str) -> dict:
    port = _free_port()
    env = {
        **os.environ,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
    }
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "gunicorn",
            "apps.config.wsgi",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "3600",
            "--log-level",
            "warning",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}/api/datasets/"
        for _ in range(300):
            try:
                # A small export first: what the worker holds before the measured one.
                small = state["datasets"][min(state["datasets"], key=int)]["id"]
                q = quote(json.dumps({"field": "external_id", "op": "=", "value": "row-1"}))
                _get(f"{base}{small}/samples/export/?format={fmt}&q={q}&columns={COLUMNS}", key)
                break
            except OSError:
                time.sleep(0.2)
        import psutil

        worker = psutil.Process(server.pid).children()[0].pid
        before = _memory(worker)
        dataset = state["datasets"][str(rows)]["id"]
        url = f"{base}{dataset}/samples/export/?format={fmt}&columns={COLUMNS}&ordering={ORDERING}"
        size, seconds = _get(url, key)
        after = _memory(worker)
    finally:
        server.terminate()
        server.wait(30)
    return {
        "rows": rows,
        "format": fmt,
        "seconds": round(seconds, 1),
        "rows_per_second": round(rows / seconds),
        "megabytes": round(size / 1e6, 1),
        "worker_rss_before_mb": round(before["VmRSS"] / 1024, 1),
        "worker_peak_rss_mb": round(after["VmHWM"] / 1024, 1),
        "growth_mb": round((after["VmHWM"] - before["VmRSS"]) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--formats", nargs="+", default=["csv", "parquet"])
    parser.add_argument("--work", help="Folder for the database (kept for re-runs).")
    args = parser.parse_args()
    work = work_folder(args.work)
    state = setup(work, args.rows)

    from apps.accounts.models import User
    from apps.accounts.services import api_token_create

    user = User.objects.get(username="bench")
    _token, key = api_token_create(user=user, name=f"bench {time.time_ns()}", by=user)
    results = [measure(state, rows, fmt, key) for rows in args.rows for fmt in args.formats]
    print(json.dumps({"columns": COLUMNS, "ordering": ORDERING, "exports": results}, indent=1))


if __name__ == "__main__":
    main()
