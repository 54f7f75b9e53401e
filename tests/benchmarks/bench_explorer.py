"""Explorer benchmark: pages of the sample table through the API, and nearest-neighbour look-ups,
at N samples × 384-d on an embedded database.

    python tests/benchmarks/bench_explorer.py --rows 1000000 --work /tmp/bench-explorer

Set-up (skipped when --work already holds it): the synthetic Parquet file of
tests/benchmarks/make_parquet.py is imported, the HNSW index built, and a scoring run's rows
written by SQL with random scores (a real run over a million samples takes 27 minutes and
gives the same row counts and indexes; the timings depend on those, not on the values). 1 % of
the samples get a tag.

Timed: every query of QUERIES, its first page and four more through the `next` cursor, as
`GET /api/datasets/<id>/samples/?q=…&ordering=…` in process (Django's test client with a real
token: routing, access check, query, serialisation), ROUNDS times; and `similar_samples` (k=10,
pgvector HNSW) for 200 random samples, and its API endpoint for 50. Prints one JSON object.

    python tests/benchmarks/bench_explorer.py --rows 1000000 --work /tmp/bench-explorer --similarity

With --similarity, only similarity searches, nearest first: `similar_to` a sample and
`similar_text` (MiniLM: the space is marked as MiniLM's, whose vectors the synthetic ones stand
for), each at its default threshold (which nothing passes among random vectors: the search's
worst case) and at 0 (half of the samples pass: every page full), the first page of 50 and four
more through `next`, for ROUNDS different samples and texts. Each is timed twice in the same
round: as the table runs it (one page of neighbours from the index at a time) and as the same
condition inside an `all` with another part, which goes the general way (the condition's whole
search, SIMILAR_LIMIT neighbours, for every page), as every similarity page did before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_setup import fresh_database, parquet, timed_api, work_folder  # noqa: E402

QUERIES = {
    "label, by mislabel score": ({"field": "label", "op": "=", "value": "cat"}, "-mislabel_score"),
    "split, by outlier score": ({"field": "split", "op": "=", "value": "test"}, "-outlier_score"),
    "label and score range, by margin": (
        {"all": [{"field": "label", "op": "=", "value": "dog"}, {"field": "error_potential", "op": ">", "value": 0.5}]},
        "margin",
    ),
    "metadata, by error potential": ({"field": "metadata.source", "op": "=", "value": "book"}, "-error_potential"),
    "flag, by mislabel score": ({"field": "flags", "op": "contains", "value": "mislabeled"}, "-mislabel_score"),
    "tag, by mislabel score": ({"field": "tags", "op": "contains", "value": "check"}, "-mislabel_score"),
    "any of label or split, by kNN agreement": (
        {"any": [{"field": "label", "op": "=", "value": "ship"}, {"field": "split", "op": "=", "value": "validation"}]},
        "knn_agreement",
    ),
    "not a label, cluster in, by outlier score": (
        {"all": [{"not": {"field": "label", "op": "in", "value": ["cat", "dog"]}}, {"field": "cluster", "op": "in", "value": [3, 7, 11]}]},
        "-outlier_score",
    ),
    "production, by coverage": ({"field": "split", "op": "=", "value": "production"}, "-coverage"),
    "suggested label differs, by id": (
        {"all": [{"field": "suggested_label", "op": "=", "value": "cat"}, {"not": {"field": "label", "op": "=", "value": "cat"}}]},
        "id",
    ),
}  # fmt: skip
PAGES = 5


def setup(work: Path, rows: int, *, rescore: bool = False) -> dict:
    state_file = work / "explorer-state.json"
    if state_file.exists():
        os.environ["LOUPE_VAR_DIR"] = str(work / "var")
        _django()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # a folder kept from older code catches up
        state = json.loads(state_file.read_text())
        if rescore:
            from apps.datasets.models import Dataset

            dataset = Dataset.objects.get(pk=state["dataset"])
            _forget_scores(dataset)
            state["score_rows_seconds"] = _scores(dataset)
            state_file.write_text(json.dumps(state))
        return state
    data = parquet(work / f"explorer-{rows}.parquet", f"--rows={rows}", "--production=0.1")
    env = fresh_database(work)
    os.environ["LOUPE_VAR_DIR"] = env["LOUPE_VAR_DIR"]
    _django()
    from django.core.management import call_command

    from apps.datasets import services
    from apps.datasets.models import Dataset

    started = time.monotonic()
    call_command(
        "import_samples",
        str(data),
        project="bench",
        dataset="explorer",
        create=True,
        user="bench",
    )
    dataset = Dataset.objects.get(name="explorer")
    imported = time.monotonic() - started
    space = dataset.embedding_spaces.get()
    index_seconds = services.embedding_index_build(space_id=space.pk)
    scores_seconds = _scores(dataset)
    state = {
        "dataset": dataset.pk,
        "import_seconds": round(imported, 1),
        "index_seconds": index_seconds,
        "score_rows_seconds": scores_seconds,
    }
    state_file.write_text(json.dumps(state))
    return state


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")
    import django

    django.setup()


def _scores(dataset) -> float:
    """A done scoring run with random scores for every sample, written as one INSERT (through
    the score table's indexes, as a run's own write is), and a tag on 1 % of the samples. As
    in a real run, the 5 % with the highest mislabel score are flagged."""
    from django.db import connection

    from apps.datasets.models import Tag
    from apps.quality.models import RunStatus, ScoringRun

    run = ScoringRun.objects.create(dataset=dataset, version=1, status=RunStatus.DONE)
    started = time.monotonic()
    with connection.cursor() as cur:
        cur.execute(
            """INSERT INTO quality_samplescore (run_id, sample_id, suggested_label,
                   likely_mislabeled, mislabel_score, error_potential, margin, outlier_score,
                   knn_agreement, cluster, x, y, coverage, flags, reasons)
               SELECT %s, s.id, (%s::text[])[1 + floor(random() * 10)::int], r > 0.95, r,
                      random(), random(), random(), random(), floor(random() * 40)::int,
                      random() * 20 - 10, random() * 20 - 10,
                      CASE WHEN s.split = 'production' THEN random() END,
                      CASE WHEN r > 0.95 THEN ARRAY['mislabeled']::varchar[] ELSE '{}' END, '[]'
               FROM (SELECT id, split, random() AS r FROM datasets_sample WHERE dataset_id = %s) s""",
            [run.pk, dataset.labels, dataset.pk],
        )
        seconds = time.monotonic() - started
        tag = Tag.objects.create(dataset=dataset, name="check")
        cur.execute(
            """INSERT INTO datasets_sampletag (tag_id, sample_id, created_at)
               SELECT %s, id, now() FROM datasets_sample WHERE dataset_id = %s AND random() < 0.01""",
            [tag.pk, dataset.pk],
        )
    # What autovacuum does soon after a run's write: statistics, and the visibility map that
    # lets index-only scans skip the table.
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    return round(seconds, 1)


def _forget_scores(dataset) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "DELETE FROM quality_samplescore WHERE run_id IN "
            "(SELECT id FROM quality_scoringrun WHERE dataset_id = %s)",
            [dataset.pk],
        )
        cur.execute("DELETE FROM datasets_sampletag")
    dataset.scoring_runs.all().delete()
    dataset.tags.all().delete()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(ms: list[float]) -> dict:
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "max_ms": round(max(ms), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", help="Folder for the file and the database (kept for re-runs).")
    parser.add_argument("--rescore", action="store_true", help="Write the scores and tags again.")
    parser.add_argument("--similarity", action="store_true", help="Only similarity searches.")
    args = parser.parse_args()
    work = work_folder(args.work)
    state = setup(work, args.rows, rescore=args.rescore)
    if args.similarity:
        similarity(state, args.rounds)
        return

    import numpy as np

    from apps.datasets.models import Dataset, Sample
    from apps.datasets.selectors import similar_samples

    dataset = Dataset.objects.get(pk=state["dataset"])
    get = timed_api()
    base = f"/api/datasets/{dataset.pk}/samples/"

    get(base)  # warm up
    per_query: dict[str, list[float]] = {name: [] for name in QUERIES}
    first_pages: list[float] = []
    for _round in range(args.rounds):
        for name, (query, ordering) in QUERIES.items():
            url = f"{base}?q={quote(json.dumps(query))}&ordering={ordering}&page_size=50"
            for page in range(PAGES):
                ms, body = get(url)
                per_query[name].append(ms)
                if page == 0:
                    first_pages.append(ms)
                if not body["next"]:
                    break
                url = body["next"].split("127.0.0.1", 1)[-1]
    all_pages = [ms for values in per_query.values() for ms in values]

    rng = np.random.default_rng(3)
    ids = list(
        Sample.objects.filter(dataset=dataset).values_list("pk", flat=True)[
            :: max(1, args.rows // 5000)
        ]
    )
    picks = [int(x) for x in rng.choice(ids, 250, replace=False)]
    others = [i for i in ids if i not in set(picks)]
    for sample_id in others[:300]:  # warm the index's pages into memory, as use would
        similar_samples(dataset, sample_id, limit=10)
    nn = []
    for sample_id in picks[:200]:
        started = time.perf_counter()
        similar_samples(dataset, sample_id, limit=10)
        nn.append((time.perf_counter() - started) * 1000)
    nn_api = [get(f"{base}{sample_id}/neighbours/?k=10")[0] for sample_id in picks[200:]]

    print(
        json.dumps(
            {
                "rows": args.rows,
                "setup": state,
                "sample_pages": summary(all_pages),
                "first_pages": summary(first_pages),
                "per_query": {name: summary(values) for name, values in per_query.items()},
                "nearest_neighbours": summary(nn),
                "nearest_neighbours_api": summary(nn_api),
            },
            indent=1,
        )
    )


TEXTS = [
    "refund for a damaged parcel",
    "the app crashes when I open settings",
    "where is my order",
    "change the delivery address",
    "card payment declined twice",
    "cancel my subscription please",
    "the screen is cracked",
    "how do I reset my password",
    "wrong item in the box",
    "invoice for last month",
]


def similarity(state: dict, rounds: int) -> None:
    import numpy as np

    from apps.datasets.models import Dataset, Sample

    dataset = Dataset.objects.get(pk=state["dataset"])
    dataset.embedding_spaces.update(method="minilm")
    get = timed_api()
    base = f"/api/datasets/{dataset.pk}/samples/"
    rng = np.random.default_rng(5)
    ids = list(Sample.objects.filter(dataset=dataset).values_list("pk", flat=True)[::997])
    anchors = [int(x) for x in rng.choice(ids, rounds + 1, replace=False)]
    searches = {
        "similar_to, default threshold 0.9": lambda r: {"similar_to": anchors[r]},
        "similar_to, min_similarity 0": lambda r: {"similar_to": anchors[r], "min_similarity": 0},
        "similar_text, default threshold 0.25": lambda r: {"similar_text": TEXTS[r % len(TEXTS)]},
        "similar_text, min_similarity 0": lambda r: {
            "similar_text": TEXTS[r % len(TEXTS)],
            "min_similarity": 0,
        },
    }
    ways = {
        "page by page": lambda query: query,
        "whole search (before)": lambda query: {"all": [query, {}]},
    }
    get(f"{base}?q={quote(json.dumps({'similar_text': 'warm up'}))}")  # loads MiniLM once
    for r in range(3):  # and the index's upper pages into memory
        get(f"{base}?q={quote(json.dumps({'similar_to': anchors[-1 - r], 'min_similarity': 0}))}")
    first: dict[tuple[str, str], list[float]] = {}
    later: dict[tuple[str, str], list[float]] = {}
    shown: dict[tuple[str, str], list[int]] = {}
    agree: dict[str, list[float]] = {}
    for r in range(rounds):
        for search, make in searches.items():
            pages: dict[str, list[list[int]]] = {}
            for way, wrap in ways.items():
                url = f"{base}?q={quote(json.dumps(wrap(make(r))))}&page_size=50"
                pages[way] = []
                for page in range(PAGES):
                    ms, body = get(url)
                    (first if page == 0 else later).setdefault((search, way), []).append(ms)
                    pages[way].append([row["id"] for row in body["results"]])
                    if not body["next"]:
                        break
                    url = body["next"].split("127.0.0.1", 1)[-1]
                shown.setdefault((search, way), []).append(sum(map(len, pages[way])))
            a, b = (set(sum(pages[way], [])) for way in ways)
            agree.setdefault(search, []).append(len(a & b) / max(1, len(a | b)))
    report = {}
    for search in searches:
        for way in ways:
            key = (search, way)
            report[f"{search} · {way}"] = {
                "first_page": summary(first[key]),
                "next_pages": summary(later[key]) if later.get(key) else None,
                "all_pages": summary(first[key] + later.get(key, [])),
                "samples_shown_per_search": statistics.mean(shown[key]),
            }
        report[f"{search} · same samples shown both ways"] = round(
            statistics.mean(agree[search]), 4
        )
    print(json.dumps({"rows": state.get("rows"), "setup": state, "similarity": report}, indent=1))


if __name__ == "__main__":
    main()
