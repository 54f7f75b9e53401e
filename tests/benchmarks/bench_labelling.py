"""Vendor labelling benchmark: how long the next item takes to appear after a label, on the
explorer benchmark's database (1,000,000 samples).

    python tests/benchmarks/bench_labelling.py --work /tmp/bench-explorer

Makes a vendor with one annotator and a sent batch of the training samples with the highest
mislabel score (5,000, the most a batch takes, and a tenth of the batch in gold items), then, as the annotator through Django's test client in process (session
login, access check, write, redirect, render): POST a label and GET the next item the redirect
names, for 300 items. Prints p50 / p95 of the whole step and of the GET alone, in ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_explorer import percentile, setup, work_folder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True, help="The explorer benchmark's work folder.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=300)
    args = parser.parse_args()
    state = setup(work_folder(args.work), args.rows)

    from django.test import Client

    from apps.accounts.models import User
    from apps.datasets.models import Dataset
    from apps.projects.models import Membership
    from apps.quality.selectors import latest_done_run
    from apps.vendors import services
    from apps.vendors.models import Batch

    dataset = Dataset.objects.get(pk=state["dataset"])
    manager = User.objects.get(username="bench")
    annotator, _ = User.objects.get_or_create(username=f"annotator-{time.time_ns()}")
    Membership.objects.get_or_create(
        project=dataset.project, user=annotator, defaults={"role": "vendor"}
    )
    vendor = services.vendor_create(project=dataset.project, name=f"Bench vendor {time.time_ns()}")
    services.vendor_member_add(vendor=vendor, project=dataset.project, user=annotator)
    started = time.perf_counter()
    batch = services.batch_create(
        dataset=dataset, vendor=vendor, by=manager, title="bench", ordering="-mislabel_score",
        run=latest_done_run(dataset), ids=None, gold_share=0.1,
        query={"field": "split", "op": "=", "value": "train"},
    )  # fmt: skip
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.SENT)
    created = time.perf_counter() - started
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(annotator)
    url = f"/vendors/work/{batch.pk}/"
    client.get(url + "?i=0")  # warm up
    step, page = [], []
    items = list(batch.items.order_by("position").values_list("pk", flat=True)[: args.items])
    for item in items:
        t0 = time.perf_counter()
        response = client.post(url, {"item": item, "label": dataset.labels[0]})
        t1 = time.perf_counter()
        shown = client.get(response["Location"])
        t2 = time.perf_counter()
        assert shown.status_code == 200
        step.append((t2 - t0) * 1000)
        page.append((t2 - t1) * 1000)
    print(
        json.dumps(
            {
                "batch_items": batch.items.count(),
                "batch_create_seconds": round(created, 2),
                "label_then_next_item_ms": {
                    "p50": round(statistics.median(step), 1),
                    "p95": round(percentile(step, 95), 1),
                },
                "next_item_page_ms": {
                    "p50": round(statistics.median(page), 1),
                    "p95": round(percentile(page, 95), 1),
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
