"""Scoring benchmark: a full scoring run over N samples with 384-d embeddings, on a fresh
embedded database.

    python tests/benchmarks/bench_scoring.py --rows 100000
    python tests/benchmarks/bench_scoring.py --rows 100000 --workers 2   # chunks shared by 2 workers

The dataset (tests/benchmarks/make_parquet.py: 10 classes, 5 % of labels flipped, 10 % of rows in
an unlabelled production split, no model probabilities, so the engine cross-validates its own)
is imported first; then the scoring run is timed from start to done: with `--workers 0`, by
`manage.py score --inline` in one process; otherwise by Celery workers sharing its chunks.
Prints one JSON object: the seconds, the run's stage timings, and the peak resident memory of
the scoring process (the largest worker's, with workers).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
from bench_setup import fresh_database, manage, parquet, work_folder  # noqa: E402


def timed(command: list[str], env: dict) -> tuple[float, float, str]:
    """Run a command; its seconds, its peak resident memory in MB and its standard output."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    out = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(command)} failed:\n{out}")
    return time.monotonic() - started, usage.ru_maxrss / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument(
        "--work", help="Folder for the file and the database (default: a temporary one)."
    )
    args = parser.parse_args()

    work = work_folder(args.work)
    data = parquet(
        work / f"score-{args.rows}-{args.dim}.parquet",
        f"--rows={args.rows}",
        f"--dim={args.dim}",
        "--no-probs",
        "--production=0.1",
        "--noise=0.05",
    )
    env = fresh_database(work)
    imported = manage(
        "import_samples",
        str(data),
        "--project=bench",
        f"--dataset=s{time.time_ns()}",
        "--create",
        "--user=bench",
        "--json",
        env=env,
    )
    dataset_id = json.loads(imported.stdout.strip().splitlines()[-1])["dataset_id"]

    if args.workers == 0:
        seconds, peak_mb, out = timed(
            [sys.executable, "manage.py", "score", f"--dataset={dataset_id}", "--inline", "--json"],
            env,
        )
    else:
        seconds, peak_mb, out = _with_workers(dataset_id, args.workers, env)
    run = json.loads(out.strip().splitlines()[-1])
    print(
        json.dumps(
            {
                "rows": args.rows,
                "dim": args.dim,
                "workers": args.workers,
                "status": run["status"],
                "seconds": round(seconds, 1),
                "peak_memory_mb": round(peak_mb),
                "timings": run.get("timings"),
                "probabilities": run.get("summary", {}).get("probabilities"),
                "likely_mislabeled": run.get("summary", {}).get("likely_mislabeled"),
            }
        )
    )


def _with_workers(dataset_id: int, workers: int, env: dict) -> tuple[float, float, str]:
    """Start Celery workers (one process each), time `score --wait`, and the largest worker."""
    # The imports queued their pgvector index builds: not part of scoring, so dropped here.
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers", "purge", "-f"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "--pool=solo",
                f"--hostname=bench{i}@%h",
                "--loglevel=WARNING",
            ],
            cwd=ROOT,
            env=env,
        )
        for i in range(workers)
    ]
    try:
        time.sleep(5)
        seconds, _own, out = timed(
            [sys.executable, "manage.py", "score", f"--dataset={dataset_id}", "--wait", "--json"],
            env,
        )
    finally:
        peaks = []
        for proc in procs:
            proc.terminate()
            _pid, _status, usage = os.wait4(proc.pid, 0)
            peaks.append(usage.ru_maxrss / 1024)
    return seconds, max(peaks), out


if __name__ == "__main__":
    main()
