"""Embedding spaces: computed when the user has none, and indexed with HNSW in pgvector."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from apps.datasets import services
from apps.datasets.models import Dataset, Embedding, EmbeddingSpace
from tests.datasets.conftest import import_into

pytestmark = pytest.mark.django_db(transaction=True)


def load(team, tmp_path, name: str, content: str) -> Dataset:
    path = tmp_path / f"{name}.csv"
    path.write_text(content)
    return import_into(team, path, name)


def test_text_without_embeddings_gets_a_tfidf_space(team, tmp_path):
    rows = [f"t{i},the invoice and the refund for order {i},billing" for i in range(30)]
    rows += [f"s{i},the parcel is late and the courier lost it {i},shipping" for i in range(30)]
    dataset = load(team, tmp_path, "texts", "id,text,label\n" + "\n".join(rows) + "\n")
    space = services.embeddings_compute(dataset_id=dataset.pk, method="tfidf-svd")
    assert (space.name, space.method) == ("tfidf-svd", "tfidf-svd")
    vectors = {
        e.sample.external_id: np.asarray(e.vector, dtype=float)
        for e in Embedding.objects.filter(space=space).select_related("sample")
    }
    assert len(vectors) == 60 and len(vectors["t1"]) == space.dimension
    billing = np.array([v for k, v in vectors.items() if k.startswith("t")])
    shipping = np.array([v for k, v in vectors.items() if k.startswith("s")])
    within, between = (billing @ billing.T).mean(), (billing @ shipping.T).mean()
    assert within > between + 0.3, (within, between)  # the two topics land apart
    assert (
        services.embeddings_compute(dataset_id=dataset.pk, method="tfidf-svd") is None
    )  # once per method


def test_tabular_without_embeddings_gets_scaled_features(team, tmp_path):
    dataset = load(
        team, tmp_path, "table", "id,age,city,label\na,30,Oslo,x\nb,40,Lima,y\nc,50,Oslo,x\n"
    )
    space = services.embeddings_compute(dataset_id=dataset.pk)
    assert space.method == "scaled-features" and Embedding.objects.filter(space=space).count() == 3


def test_hnsw_index_is_built_once_per_space_and_used(team, tmp_path):
    lines = [
        f"s{i},text {i},{'cat' if i % 2 else 'dog'},"
        + ",".join(str((i * 7 + j) % 11 / 10) for j in range(4))
        for i in range(40)
    ]
    dataset = load(
        team,
        tmp_path,
        "vectors",
        "id,text,label,emb_0,emb_1,emb_2,emb_3\n" + "\n".join(lines) + "\n",
    )
    space = dataset.embedding_spaces.get()
    seconds = services.embedding_index_build(space_id=space.pk)
    assert seconds is not None and services.embedding_index_build(space_id=space.pk) is None
    space.refresh_from_db()
    assert space.index_built_at is not None and space.index_build_seconds == seconds
    with connection.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [space.index_name])
        (definition,) = cur.fetchone()
        assert (
            "hnsw" in definition
            and "vector_cosine_ops" in definition
            and f"space_id = {space.pk}" in definition
        )
        # On a 40-row table the planner may prefer the primary key plus a sort; with both
        # ruled out, only the HNSW index can give the order the query asks for.
        cur.execute("ANALYZE datasets_embedding")
        cur.execute("SET enable_seqscan = off")
        cur.execute("SET enable_sort = off")
        cur.execute(
            "EXPLAIN SELECT sample_id FROM datasets_embedding WHERE space_id = %s "
            "ORDER BY vector::vector(4) <=> '[1,0,0,0]' LIMIT 5",
            [space.pk],
        )
        plan = " ".join(row[0] for row in cur.fetchall())
        cur.execute("RESET enable_seqscan")
        cur.execute("RESET enable_sort")
    assert space.index_name in plan


def test_deleting_a_dataset_deletes_its_vectors_and_index(team, tmp_path):
    dataset = load(team, tmp_path, "gone", "id,text,label,emb_0,emb_1\na,x,cat,1,0\nb,y,dog,0,1\n")
    space = dataset.embedding_spaces.get()
    services.embedding_index_build(space_id=space.pk)
    services.dataset_delete(dataset=dataset, by=None)
    assert not Embedding.objects.filter(space_id=space.pk).exists()
    assert not EmbeddingSpace.objects.filter(pk=space.pk).exists()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_indexes WHERE indexname = %s", [space.index_name])
        assert cur.fetchone()[0] == 0


def test_two_index_builds_at_once_both_finish(team, tmp_path):
    """Concurrent CREATE INDEX CONCURRENTLY on one table deadlock; builds take turns instead."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    spaces = []
    for name in ("first", "second"):
        rows = [
            f"{name}{i},t,a," + ",".join(f"{v:.3f}" for v in rng.normal(size=4)) for i in range(400)
        ]
        header = "id,text,label,emb_0,emb_1,emb_2,emb_3\n"
        dataset = load(team, tmp_path, name, header + "\n".join(rows) + "\n")
        spaces.append(dataset.embedding_spaces.get().pk)
    with ThreadPoolExecutor(2) as pool:
        seconds = list(pool.map(lambda pk: services.embedding_index_build(space_id=pk), spaces))
    assert all(s is not None for s in seconds)
    assert EmbeddingSpace.objects.filter(pk__in=spaces, index_built_at__isnull=False).count() == 2
