"""Worker thread pools: scoring runs with the BLAS/OpenMP pools sized to each worker's share of
the cores against the pools at their defaults (every core), side by side.

    python tests/benchmarks/bench_threads.py --rows 30000

Two datasets of N samples × 384-d (the scoring benchmark's synthetic file) are imported into a
fresh embedded database. Then, for each pool setting, a Celery worker is started and timed:
one run alone on a worker with concurrency 1, one run alone and two runs at once on a worker with
concurrency 2 (two prefork processes). "sized" leaves LOUPE_WORKER_THREADS unset (cores ÷
concurrency); "default" sets it to the core count, what OpenBLAS and OpenMP take on their own.
Prints one JSON object per case, then a Markdown table of the wall times.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_setup import fresh_database, manage, parquet, work_folder  # noqa: E402

from workers.threads import available_cores  # noqa: E402

READY = (
    "import json; from apps.config.tasks import ping, thread_pools; "
    "ping.delay('ready').get(timeout=180); "
    "print(json.dumps(sorted({p['threads'] for p in thread_pools.delay().get(timeout=120)})))"
)


def score(dataset_id: int, env: dict) -> tuple[float, dict]:
    """Queue a scoring run, wait for a worker to finish it: its seconds and its report."""
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "manage.py", "score", f"--dataset={dataset_id}", "--wait", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return time.monotonic() - started, json.loads(out.strip().splitlines()[-1])


def case(datasets: list[int], concurrency: int, threads: int | None, env: dict) -> dict:
    """Start one worker, wait until it answers, time the runs of `datasets` started at once."""
    env = {**env}
    env.pop("LOUPE_WORKER_THREADS", None)
    if threads is not None:
        env["LOUPE_WORKER_THREADS"] = str(threads)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers",
            "worker",
            f"--concurrency={concurrency}",
            f"--hostname=bench-threads-{time.time_ns()}@%h",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pools = json.loads(manage("shell", "-c", READY, env=env).stdout.strip().splitlines()[-1])
        started = time.monotonic()
        with ThreadPoolExecutor(len(datasets)) as pool:
            runs = list(pool.map(lambda dataset_id: score(dataset_id, env), datasets))
        wall = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait()
    return {
        "concurrency": concurrency,
        "runs": len(datasets),
        "pool_threads": pools,
        "wall_seconds": round(wall, 1),
        "run_seconds": [round(seconds, 1) for seconds, _report in runs],
        "status": [report["status"] for _seconds, report in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--dim", type=int, default=384)
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
    datasets = []
    for _ in range(2):
        imported = manage(
            "import_samples",
            str(data),
            "--project=bench",
            f"--dataset=t{time.time_ns()}",
            "--create",
            "--user=bench",
            "--json",
            env=env,
        )
        datasets.append(json.loads(imported.stdout.strip().splitlines()[-1])["dataset_id"])
    # The imports queued their pgvector index builds: not part of scoring, so dropped here.
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers", "purge", "-f"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )

    cores = available_cores()
    results = []
    for label, concurrency, runs in (
        ("one run alone, concurrency 1", 1, datasets[:1]),
        ("one run alone, concurrency 2", 2, datasets[:1]),
        ("two runs at once, concurrency 2", 2, datasets),
    ):
        for pools, threads in (("sized", None), ("default", cores)):
            result = {"case": label, "pools": pools, "rows": args.rows, "cores": cores}
            result |= case(runs, concurrency, threads, env)
            print(json.dumps(result), flush=True)
            results.append(result)

    print("\n| case | pools sized: threads, wall | pools at default: threads, wall |")
    print("| --- | --- | --- |")
    for sized, default in zip(results[::2], results[1::2], strict=True):
        cells = [
            f"{'/'.join(map(str, r['pool_threads']))} per pool: **{r['wall_seconds']} s**"
            + (f" (runs {' and '.join(map(str, r['run_seconds']))} s)" if r["runs"] > 1 else "")
            for r in (sized, default)
        ]
        print(f"| {sized['case']} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
