"""Fixtures for dataset tests: files in each format, and a way to see that nothing changed."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from apps.datasets.models import (
    Dataset,
    DatasetVersion,
    Embedding,
    EmbeddingSpace,
    LabelEvent,
    ModelRun,
    Prediction,
    Sample,
    SampleTag,
    Tag,
)
from apps.quality.models import RunStatus, SampleScore, ScoringRun

RECORDS = [
    {
        "id": "r1",
        "text": "the cat sat",
        "label": "cat",
        "split": "train",
        "metadata": {"source": "web", "n": 3},
        "embedding": [0.1, 0.2, 0.3, 0.4],
        "probs": [0.8, 0.2],
    },
    {
        "id": "r2",
        "text": "a dog barked",
        "label": "dog",
        "split": "test",
        "metadata": {"source": "book"},
        "embedding": [0.5, -0.25, 0.0, 1.0],
        "probs": [0.3, 0.7],
    },
    {
        "id": "r3",
        "text": 'ünïcödé, "quotes" and, commas\nnewline',
        "label": None,
        "split": "unlabeled",
        "metadata": {},
        "embedding": [1.5, 2.5, -3.5, 0.125],
        "probs": [0.5, 0.5],
    },
]


def write_file(path: Path, records: list[dict], fmt: str) -> Path:
    """Write records in the documented conventions: CSV with emb_i/prob_<class>/meta_ columns."""
    if fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    elif fmt == "csv":
        keys = [k for k in records[0] if k not in ("embedding", "probs", "metadata")]
        emb = len(records[0].get("embedding") or [])
        metas = sorted({m for r in records for m in r.get("metadata", {})})
        header = keys + [f"meta_{m}" for m in metas] + [f"emb_{i}" for i in range(emb)]
        if "probs" in records[0]:
            header += ["prob_cat", "prob_dog"]
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for r in records:
                row = [r.get(k) if r.get(k) is not None else "" for k in keys]
                row += [r.get("metadata", {}).get(m, "") for m in metas]
                row += list(r.get("embedding") or [])
                row += list(r.get("probs") or []) if "probs" in r else []
                w.writerow(row)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {k: [r.get(k) for r in records] for k in records[0]}
        if "metadata" in columns:
            columns["metadata"] = [json.dumps(m) for m in columns["metadata"]]
        table = pa.table({k: pa.array(v) for k, v in columns.items()})
        pq.write_table(table, path)
    return path


def snapshot(dataset: Dataset | None = None) -> dict:
    """Everything an import may touch, to compare before and after a refusal."""
    return {
        "samples": sorted(
            Sample.objects.values_list("dataset_id", "external_id", "label", "split", "active")
        ),
        "events": LabelEvent.objects.count(),
        "versions": DatasetVersion.objects.count(),
        "spaces": EmbeddingSpace.objects.count(),
        "embeddings": Embedding.objects.count(),
        "runs": ModelRun.objects.count(),
        "predictions": Prediction.objects.count(),
        "labels": list(Dataset.objects.order_by("pk").values_list("labels", flat=True)),
    }


@pytest.fixture
def files(tmp_path):
    def make(records=RECORDS, fmt="jsonl", name=None):
        return write_file(tmp_path / (name or f"data.{fmt}"), records, fmt)

    return make


def import_into(team, path: Path, name: str = "animals") -> Dataset:
    """Import a file into a dataset of the team's project (made if missing), as its owner."""
    import io

    from django.core.management import call_command

    call_command(
        "import_samples",
        str(path),
        project=team.project.slug,
        dataset=name,
        create=True,
        user=team.user("owner").username,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    return Dataset.objects.get(name=name)


# --- A scored dataset with every kind of value, for the explorer ----------------------------

LABELS = ["cat", "dog", "bird"]
WORDS = ["red", "blue", "fast", "slow", "Cat", "dog", "50%", "under_score"]
SPLITS = ["train", "test", "validation"]
FLAGS = ["mislabeled", "outlier", "duplicate"]
TAGS = ["check", "fixed", "odd"]
NUMBER_SCORES = ["mislabel_score", "error_potential", "margin", "outlier_score", "x", "y"]


@pytest.fixture
def world(db, team):
    """80 samples with every kind of value, some without scores, labels or metadata keys."""
    rng = random.Random(7)
    dataset = Dataset.objects.create(project=team.project, name="q", labels=LABELS)
    run = ScoringRun.objects.create(dataset=dataset, version=1, status=RunStatus.DONE)
    space = EmbeddingSpace.objects.create(dataset=dataset, name="e", dimension=3)
    tags = {name: Tag.objects.create(dataset=dataset, name=name) for name in TAGS}
    rows = []
    for i in range(80):
        meta = {}
        if rng.random() < 0.7:
            meta["n"] = rng.choice([rng.randint(-3, 3), rng.uniform(-3, 3)])
        if rng.random() < 0.7:
            meta["src"] = rng.choice(["web", "book", "Web", "a_b"])
        if rng.random() < 0.3:
            meta["n"] = "seven"  # a key whose type varies from sample to sample
        if rng.random() < 0.2:
            meta["ok"] = rng.random() < 0.5
        sample = Sample.objects.create(
            dataset=dataset,
            external_id=f"s{i}",
            label=rng.choice([*LABELS, None]),
            first_label=None,
            split=rng.choice(SPLITS),
            text=" ".join(rng.choices(WORDS, k=3)),
            metadata=meta,
        )
        row = {
            "id": sample.pk,
            "external_id": sample.external_id,
            "label": sample.label,
            "split": sample.split,
            "text": sample.text,
            "metadata": meta,
            "tags": [t for t in TAGS if rng.random() < 0.3],
            "score": None,
        }
        for name in row["tags"]:
            SampleTag.objects.create(tag=tags[name], sample=sample)
        if i % 9 != 0:  # some samples arrived after the run: no scores
            score = {
                name: (None if rng.random() < 0.1 else round(rng.uniform(0, 1), 3))
                for name in NUMBER_SCORES
            }
            score.update(
                suggested_label=rng.choice([*LABELS, None]),
                likely_mislabeled=rng.random() < 0.3,
                flags=[f for f in FLAGS if rng.random() < 0.25],
                cluster=rng.randint(0, 3),
            )
            SampleScore.objects.create(run=run, sample=sample, **score)
            row["score"] = score
        Embedding.objects.create(
            space=space, sample=sample, vector=[rng.gauss(0, 1) for _ in range(3)]
        )
        rows.append(row)
    return dataset, run, Rows(rows)


class Rows(list):
    def __repr__(self) -> str:  # hypothesis prints the fixture with a failing example
        return f"<{len(self)} rows>"
