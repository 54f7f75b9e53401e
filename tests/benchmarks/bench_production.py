"""Production append benchmark: one batch of 10,000 production samples with 384-d embeddings
and 10-class probabilities, checked and written by `production_append` (what the API calls),
on a fresh embedded database.

    python tests/benchmarks/bench_production.py --work /tmp/bench-production

Prints one JSON object: seconds for the batch, rows per second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_setup import fresh_database, work_folder  # noqa: E402

CLASSES = [f"c{i}" for i in range(10)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", help="Folder for the database.")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    env = fresh_database(work_folder(args.work))
    os.environ["LOUPE_VAR_DIR"] = env["LOUPE_VAR_DIR"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")
    import django

    django.setup()
    import numpy as np

    from apps.accounts.models import User
    from apps.datasets.models import Dataset, DatasetVersion, EmbeddingSpace, ModelRun
    from apps.monitoring.services.production import production_append
    from apps.projects.services import project_create

    user = User.objects.get(username="bench")
    name = f"production-{int(time.time())}"
    project = project_create(name=name, by=user)
    dataset = Dataset.objects.create(project=project, name=name, labels=CLASSES)
    DatasetVersion.objects.create(dataset=dataset, number=1, author=user)  # training, imported
    EmbeddingSpace.objects.create(dataset=dataset, name="default", dimension=args.dim)
    ModelRun.objects.create(dataset=dataset, name="model", classes=CLASSES)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(args.rows, args.dim))
    probs = rng.dirichlet(np.ones(len(CLASSES)), size=args.rows)
    rows = [
        {
            "id": f"p{i}",
            "text": f"production message {i}",
            "embedding": vectors[i].tolist(),
            "probabilities": probs[i].tolist(),
            "timestamp": "2026-12-01T12:00:00+00:00",
        }
        for i in range(args.rows)
    ]
    started = time.monotonic()
    result = production_append(dataset=dataset, rows=rows, by=user)
    seconds = time.monotonic() - started
    print(
        json.dumps(
            {
                "rows": args.rows,
                "dim": args.dim,
                "seconds": round(seconds, 2),
                "rows_per_second": round(args.rows / seconds),
                "result": result,
            }
        )
    )


if __name__ == "__main__":
    main()
