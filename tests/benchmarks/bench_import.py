"""Import benchmark: N samples with 384-d embeddings from Parquet, on a fresh embedded database.

    python tests/benchmarks/bench_import.py --rows 1000000

Prints one JSON object: end-to-end seconds and samples/s of `manage.py import_samples`
(process start to exit), the import's own stage timings, the importing process's peak memory,
and, separately, the HNSW index build time of the embedding space.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
from bench_setup import fresh_database, manage, parquet, work_folder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument(
        "--work", help="Folder for the file and the database (default: a temporary one)."
    )
    parser.add_argument("--skip-index", action="store_true")
    args = parser.parse_args()

    work = work_folder(args.work)
    data = parquet(work / f"bench-{args.rows}.parquet", f"--rows={args.rows}", f"--dim={args.dim}")
    env = fresh_database(work)

    started = time.monotonic()
    done = manage(
        "import_samples",
        str(data),
        "--project",
        "bench",
        "--dataset",
        f"b{time.time_ns()}",
        "--create",
        "--user",
        "bench",
        "--json",
        env=env,
    )
    seconds = time.monotonic() - started
    # The largest resident set of any finished child: the import command is by far the largest.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = json.loads(done.stdout.strip().splitlines()[-1])
    summary = {
        "rows": args.rows,
        "dim": args.dim,
        "file_mb": round(data.stat().st_size / 1e6),
        "end_to_end_seconds": round(seconds, 1),
        "samples_per_second": round(args.rows / seconds),
        "import_timings": result["timings"],
        "peak_memory_mb": round(peak_mb),
    }
    if not args.skip_index:
        started = time.monotonic()
        manage("build_embedding_index", "--space", str(result["embedding_space_id"]), env=env)
        summary["hnsw_index_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
