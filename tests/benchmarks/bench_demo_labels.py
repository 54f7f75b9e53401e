"""Label errors on the demo dataset: a full scoring run against the label flips planted in it.

    python tests/benchmarks/bench_demo_labels.py        # needs cleanlab in the venv for the baseline

The demo dataset (2,400 customer-support messages, six classes, `apps/demo/data.py`)
is loaded into a fresh embedded database with its computed text embeddings, scored by
`manage.py score --inline`, and its `likely_mislabeled` flags are compared with the flips the
generator planted. Beside them: cleanlab's `find_label_issues` on 5-fold logistic-regression
probabilities over the same embeddings. Also how many samples the run flags near duplicate,
with the thresholds it calibrated, and how many planted copies it grouped with their source.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
from bench_setup import fresh_database, manage, work_folder  # noqa: E402


def figures(flags: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int((flags & truth).sum())
    precision, recall = tp / max(int(flags.sum()), 1), tp / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {
        "flagged": int(flags.sum()),
        "true_positives": tp,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }


def duplicate_figures(run_id: int, planted: dict, dataset) -> dict:
    """How many samples the run flags near duplicate (of all the dataset's, production days
    included), with the thresholds it used, and how many planted copy pairs share a group."""
    from apps.quality.models import ScoringRun

    groups = dict(
        dataset.samples.filter(scores__run_id=run_id).values_list(
            "external_id", "scores__duplicate_group"
        )
    )
    pairs = planted["near_duplicates"]
    found = sum(1 for a, b in pairs if groups.get(a) is not None and groups[a] == groups.get(b))
    summary = ScoringRun.objects.get(pk=run_id).summary["duplicates"]
    total = dataset.samples.count()
    return {
        "flagged": summary["n_duplicate_samples"],
        "of_samples": total,
        "share": round(summary["n_duplicate_samples"] / total, 4),
        "leaked": summary["n_leaked_samples"],
        "planted_pairs": len(pairs),
        "planted_pairs_grouped": found,
        "embedding_threshold": summary["embedding_threshold"],
        "text_jaccard": summary["text_jaccard"],
        "pairs": summary["pairs"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="Folder for the database (default: a temporary one).")
    args = parser.parse_args()
    env = fresh_database(work_folder(args.work))
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")
    import django

    django.setup()
    from apps.config import embedded
    from apps.datasets.models import Sample
    from apps.demo.data import generate
    from apps.demo.services import demo_dataset_ensure, demo_project_ensure
    from apps.quality import arrays
    from apps.quality.models import SampleScore

    project, _ = demo_project_ensure(credentials_path=embedded.var_dir() / "demo-credentials.json")
    demo_dataset_ensure(project=project, by=project.created_by, folder=embedded.var_dir())
    dataset = project.datasets.get()
    started = time.monotonic()
    out = manage("score", f"--dataset={dataset.pk}", "--inline", "--json", env=env).stdout
    seconds = time.monotonic() - started
    run = json.loads(out.strip().splitlines()[-1])

    _records, planted = generate()
    flipped = set(planted["flipped"])
    samples = list(
        Sample.objects.filter(dataset=dataset, label__isnull=False)
        .order_by("id")
        .values_list("id", "external_id", "label")
    )
    ids = np.array([s[0] for s in samples])
    truth = np.array([s[1] in flipped for s in samples])
    flagged_ids = set(
        SampleScore.objects.filter(run_id=run["run"], likely_mislabeled=True).values_list(
            "sample_id", flat=True
        )
    )
    ours = np.array([i in flagged_ids for i in ids])

    result = {
        "samples": len(ids),
        "planted_flips": int(truth.sum()),
        "scoring_seconds": round(seconds, 1),
    }
    result["loupe"] = figures(ours, truth)
    result["near_duplicates"] = duplicate_figures(run["run"], planted, dataset)
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        result["cleanlab"] = "not installed"
    else:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_predict

        space = dataset.embedding_spaces.order_by("id").first()
        found, vectors = arrays.space_vectors(space.pk)
        x, _present = arrays.align(ids, found, vectors)
        classes = sorted({s[2] for s in samples})
        y = np.array([classes.index(s[2]) for s in samples])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probs = cross_val_predict(
                LogisticRegression(max_iter=1000), x, y, cv=5, method="predict_proba"
            )
        result["cleanlab"] = figures(find_label_issues(y, probs), truth)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
