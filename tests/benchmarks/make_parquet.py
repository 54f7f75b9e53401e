"""Write a synthetic labelled dataset with 384-d embeddings and probabilities as Parquet.

python tests/benchmarks/make_parquet.py OUT.parquet --rows 1000000
"""

from __future__ import annotations

import argparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument(
        "--no-probs", action="store_true", help="Leave out the model's probabilities."
    )
    parser.add_argument(
        "--production", type=float, default=0.0, help="Share of rows in the production split."
    )
    parser.add_argument(
        "--noise", type=float, default=0.0, help="Share of labels flipped to another class."
    )
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(len(CLASSES), args.dim)).astype(np.float32)
    writer = None
    for start in range(0, args.rows, args.chunk):
        n = min(args.chunk, args.rows - start)
        y = rng.integers(0, len(CLASSES), n)
        emb = centers[y] + rng.normal(scale=2.0, size=(n, args.dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        logits = rng.normal(size=(n, len(CLASSES))).astype(np.float32)
        logits[np.arange(n), y] += 3
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        split = rng.choice(["train", "train", "train", "validation", "test"], n)
        split[rng.random(n) < args.production] = "production"
        given = y.copy()
        flip = rng.random(n) < args.noise
        given[flip] = (y[flip] + rng.integers(1, len(CLASSES), flip.sum())) % len(CLASSES)
        columns = {
            "id": [f"s{start + i:07d}" for i in range(n)],
            "text": [f"sample {start + i} of class {CLASSES[c]}" for i, c in enumerate(y)],
            # Production rows arrive unlabelled.
            "label": [
                None if s == "production" else CLASSES[c] for s, c in zip(split, given, strict=True)
            ],
            "split": split,
            "meta_source": rng.choice(["web", "book", "crawl"], n),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), args.dim),
        }
        if not args.no_probs:
            columns["probs"] = pa.FixedSizeListArray.from_arrays(
                pa.array(probs.ravel()), len(CLASSES)
            )
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(args.out, table.schema)
        writer.write_table(table)
    writer.close()


if __name__ == "__main__":
    main()
