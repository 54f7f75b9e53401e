"""Sample table benchmark: pages sorted by a value that may be missing (label, split, id, a
metadata key), filtered, through the API, at N samples on an embedded database.

    python tests/benchmarks/bench_table_sorting.py --rows 1000000 --work /tmp/bench-sorting

Set-up (skipped when --work already holds it): one dataset of N samples written by one SQL
statement: 10 labels and 10 % unlabelled, four splits, ids `s0000001`…, metadata with a
`source` (five values; missing on 20 %) and a number `n`; then `VACUUM ANALYZE`. No scoring run:
these orderings do not read scores.

Timed: every ordering of ORDERINGS, each way, with each filter of FILTERS, its first page and
four more through the `next` cursor, as `GET /api/datasets/<id>/samples/?q=…&ordering=…`
in process (Django's test client with a real token), ROUNDS times, without sort indexes on the
metadata keys; then the two keys' indexes are built (what the table's first page sorted by a
key asks a worker for on a large dataset: datasets.services.sort_index_request / _build) and
the metadata orderings timed again. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_explorer import _django, summary  # noqa: E402
from bench_setup import fresh_database, timed_api, work_folder  # noqa: E402

LABELS = ["cat", "dog", "bird", "ship", "car", "tree", "fish", "frog", "horse", "truck"]
ORDERINGS = ["label", "split", "external_id", "metadata.source", "metadata.n"]
METADATA_ORDERINGS = [name for name in ORDERINGS if name.startswith("metadata.")]
FILTERS = {
    "none": {},
    "label": {"field": "label", "op": "=", "value": "cat"},
    "split": {"field": "split", "op": "=", "value": "test"},
    "metadata": {"field": "metadata.source", "op": "=", "value": "web"},
    "text": {"field": "text", "op": "contains", "value": "7"},
}
PAGES = 5


def setup(work: Path, rows: int) -> dict:
    state_file = work / "sorting-state.json"
    if state_file.exists():
        os.environ["LOUPE_VAR_DIR"] = str(work / "var")
        _django()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return json.loads(state_file.read_text())
    env = fresh_database(work)
    os.environ["LOUPE_VAR_DIR"] = env["LOUPE_VAR_DIR"]
    _django()
    from django.db import connection

    from apps.accounts.models import User
    from apps.datasets.models import Dataset, Sample
    from apps.projects.services import project_create

    user = User.objects.get(username="bench")
    project = project_create(name="bench sorting", by=user)
    dataset = Dataset.objects.create(project=project, name="sorting", labels=LABELS)
    template = Sample.objects.create(dataset=dataset, external_id="template", text="t")
    columns = [
        c.name
        for c in connection.introspection.get_table_description(
            connection.cursor(), Sample._meta.db_table
        )
        if c.name != "id"
    ]
    made = {
        "external_id": "'s' || lpad(g::text, 7, '0')",
        "label": f"CASE WHEN g %% 10 = 0 THEN NULL ELSE (%s::text[])[1 + (hashint4(g) & 1023) %% {len(LABELS)}] END",
        "split": "(ARRAY['train', 'train', 'test', 'validation'])[1 + (hashint4(g + 1) & 3)]",
        "text": "'sample ' || g::text || ' of the benchmark'",
        "metadata": """jsonb_strip_nulls(jsonb_build_object(
            'source', CASE WHEN g %% 5 <> 0
                THEN (ARRAY['web', 'book', 'Web', 'phone', 'mail'])[1 + (hashint4(g + 2) & 1023) %% 5]
                END,
            'n', (hashint4(g + 3) %% 100000) / 1000.0))""",
    }  # fmt: skip
    select = ", ".join(made.get(c, f"t.{c}") for c in columns)
    started = time.monotonic()
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO datasets_sample ({', '.join(columns)}) SELECT {select} "  # noqa: S608
            "FROM generate_series(1, %s) g, datasets_sample t WHERE t.id = %s",
            [LABELS, rows, template.pk],
        )
        template.delete()
        seconds = time.monotonic() - started
        cur.execute("VACUUM ANALYZE")
    state = {"dataset": dataset.pk, "insert_seconds": round(seconds, 1)}
    state_file.write_text(json.dumps(state))
    return state


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", help="Folder for the database (kept for re-runs).")
    args = parser.parse_args()
    work = work_folder(args.work)
    state = setup(work, args.rows)

    from apps.datasets import services
    from apps.datasets.models import Dataset

    dataset = Dataset.objects.get(pk=state["dataset"])
    get = timed_api()
    base = f"/api/datasets/{dataset.pk}/samples/"

    get(base)  # warm up
    _drop_sort_indexes(dataset)
    without = _timed(get, base, ORDERINGS, args.rounds)
    built = {}
    for name in METADATA_ORDERINGS:
        index = services.sort_index_request(dataset=dataset, key=name.removeprefix("metadata."))
        if index is None:
            raise SystemExit(f"no sort index for {name}")
        built[name] = services.sort_index_build(index_id=index.pk)
    with_index = _timed(get, base, METADATA_ORDERINGS, args.rounds)
    print(
        json.dumps(
            {
                "rows": args.rows,
                "setup": state,
                "without_sort_indexes": _report(without, ORDERINGS),
                "sort_index_build_seconds": built,
                "with_sort_indexes": _report(with_index, METADATA_ORDERINGS),
            },
            indent=1,
        )
    )


def _drop_sort_indexes(dataset) -> None:
    from django.db import transaction

    # Imported once Django is set up (setup() does it).
    from apps.datasets import services
    from apps.datasets.models import SortIndex

    with transaction.atomic():
        services.sort_indexes_drop(dataset=dataset)
        SortIndex.objects.filter(dataset=dataset).delete()


def _timed(get, base: str, orderings, rounds: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    for _round in range(rounds):
        for name in orderings:
            for ordering in (name, f"-{name}"):
                for label, query in FILTERS.items():
                    q = f"q={quote(json.dumps(query))}&" if query else ""
                    url = f"{base}?{q}ordering={ordering}&page_size=50"
                    for _page in range(PAGES):
                        ms, body = get(url)
                        timings.setdefault(f"{ordering} · {label}", []).append(ms)
                        if not body["next"]:
                            break
                        url = body["next"].split("127.0.0.1", 1)[-1]
    return timings


def _report(timings: dict[str, list[float]], orderings) -> dict:
    return {
        "pages": summary([ms for values in timings.values() for ms in values]),
        "by_ordering": {
            name: summary(
                [ms for k, v in timings.items() if k.lstrip("-").startswith(name) for ms in v]
            )
            for name in orderings
        },
        "p95_ms_by_ordering_and_filter": {
            name: {
                label: summary(timings[f"{name} · {label}"] + timings[f"-{name} · {label}"])[
                    "p95_ms"
                ]
                for label in FILTERS
            }
            for name in orderings
        },
    }


if __name__ == "__main__":
    main()
