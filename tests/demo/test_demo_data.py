"""The demonstration dataset: deterministic, the right shape, and its ground truth holds."""

from __future__ import annotations

import json
from collections import Counter
from difflib import SequenceMatcher

import pytest

from apps.demo.data import (
    CONFUSABLE,
    DEMO_CLASSES,
    NEW_PRODUCT_LINE,
    generate,
    write_jsonl,
)

LABELLED = ("train", "validation", "test")
METADATA_KEYS = {"channel", "language_region", "created_month", "agent_team"}


@pytest.fixture(scope="module")
def demo():
    return generate()


@pytest.fixture(scope="module")
def records(demo):
    return demo[0]


@pytest.fixture(scope="module")
def truth(demo):
    return demo[1]


@pytest.fixture(scope="module")
def by_id(records):
    return {r["id"]: r for r in records}


def similar(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b).ratio()


def test_same_seed_same_data_other_seed_other_data(demo):
    assert generate() == demo
    other_records, _ = generate(seed=8)
    assert [r["text"] for r in other_records] != [r["text"] for r in demo[0]]


def test_records_follow_the_import_conventions(records):
    assert len(records) == 2400
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "msg-000001" and all(i.startswith("msg-") and len(i) == 10 for i in ids)
    for r in records:
        assert set(r) == {"id", "text", "label", "split", "metadata"}
        assert isinstance(r["text"], str) and r["text"].strip()
        assert set(r["metadata"]) == METADATA_KEYS
        assert r["metadata"]["channel"] in {"email", "chat", "phone"}
        assert r["metadata"]["language_region"] in {"en-US", "en-GB", "en-IN"}
        assert "2025-01" <= r["metadata"]["created_month"] <= "2025-12"
        if r["split"] == "production":
            assert r["label"] is None
        else:
            assert r["label"] in DEMO_CLASSES


def test_texts_are_varied(records):
    texts = [r["text"] for r in records]
    assert len(set(texts)) == len(texts)  # the planted near-duplicates are near, not exact
    openings = {" ".join(t.split()[:6]) for t in texts}
    assert len(openings) > 800


@pytest.mark.parametrize("n", [500, 3000])
def test_size_is_what_was_asked(n):
    records, truth = generate(n=n, seed=1)
    assert len(records) == n
    assert truth["outliers"] and truth["leaked"] and truth["conflicting_duplicates"]


def test_too_small_is_refused():
    with pytest.raises(ValueError):
        generate(n=50)


def test_split_shares(records):
    shares = {s: k / len(records) for s, k in Counter(r["split"] for r in records).items()}
    expected = {"train": 0.70, "validation": 0.10, "test": 0.15, "production": 0.05}
    assert set(shares) == set(expected)
    for split, share in expected.items():
        assert share - 0.015 <= shares[split] <= share + 0.015, (split, shares[split])


def test_every_class_in_every_labelled_split(records):
    for split in LABELLED:
        labels = Counter(r["label"] for r in records if r["split"] == split)
        assert set(labels) == set(DEMO_CLASSES), split
        assert min(labels.values()) >= 10, (split, labels)


def labelled_clean(records, truth):
    outliers = set(truth["outliers"])
    return [r for r in records if r["split"] in LABELLED and r["id"] not in outliers]


def test_flip_rate_and_weak_slice(records, truth):
    flipped = truth["flipped"]
    labelled = labelled_clean(records, truth)
    assert 0.05 <= len(flipped) / len(labelled) <= 0.07

    slice_key, slice_value = next(iter(truth["weak_slice"].items()))
    assert (slice_key, slice_value) == ("channel", "phone")
    weak = [r for r in labelled if r["metadata"][slice_key] == slice_value]
    rest = [r for r in labelled if r["metadata"][slice_key] != slice_value]
    weak_rate = sum(r["id"] in flipped for r in weak) / len(weak)
    rest_rate = sum(r["id"] in flipped for r in rest) / len(rest)
    assert weak_rate >= 2.5 * rest_rate, (weak_rate, rest_rate)


def test_flips_carry_a_plausible_wrong_label(by_id, truth):
    flipped = truth["flipped"]
    confusable = 0
    for sample_id, true_label in flipped.items():
        given = by_id[sample_id]["label"]
        assert by_id[sample_id]["split"] in LABELLED
        assert true_label in DEMO_CLASSES and given in DEMO_CLASSES
        assert given != true_label
        confusable += given in CONFUSABLE[true_label]
    # A random wrong class would be confusable about 2 times in 5.
    assert confusable / len(flipped) > 0.7


def test_near_duplicates(by_id, truth, records):
    pairs = truth["near_duplicates"]
    assert 0.007 * len(records) <= len(pairs) <= 0.015 * len(records)
    for a, b in pairs:
        assert a != b
        assert by_id[a]["text"] != by_id[b]["text"]
        assert similar(by_id[a]["text"], by_id[b]["text"]) > 0.85, (a, b)
    as_sets = {frozenset(p) for p in pairs}
    assert all(frozenset(p) in as_sets for p in truth["leaked"] + truth["conflicting_duplicates"])


def test_leaked_pairs_cross_from_train_to_test(by_id, truth):
    assert len(truth["leaked"]) >= 3
    for train_id, test_id in truth["leaked"]:
        assert by_id[train_id]["split"] == "train"
        assert by_id[test_id]["split"] == "test"
        assert similar(by_id[train_id]["text"], by_id[test_id]["text"]) > 0.85


def test_conflicting_duplicates_disagree(by_id, truth):
    assert len(truth["conflicting_duplicates"]) >= 2
    for a, b in truth["conflicting_duplicates"]:
        assert by_id[a]["label"] is not None and by_id[b]["label"] is not None
        assert by_id[a]["label"] != by_id[b]["label"]
        # exactly one of the two is wrong, and the truth says which
        assert (a in truth["flipped"]) != (b in truth["flipped"])


def test_outliers(by_id, truth, records):
    outliers = truth["outliers"]
    assert 0.003 * len(records) <= len(outliers) <= 0.01 * len(records)
    assert all(i in by_id for i in outliers)
    texts = [by_id[i]["text"] for i in outliers]
    assert len(set(texts)) == len(texts)
    assert any(len(t) <= 5 for t in texts)  # empty-ish
    assert any(not t.isascii() for t in texts)  # another language


def test_production_drifts_to_the_new_product_line(records, truth):
    assert truth["drift"] == {"split": "production", "new_product_line": NEW_PRODUCT_LINE}

    def share(split):
        rows = [r for r in records if r["split"] == split]
        return sum(NEW_PRODUCT_LINE in r["text"] for r in rows) / len(rows)

    assert share("production") >= 0.25
    assert share("production") >= 10 * share("train")
    months = {r["metadata"]["created_month"] for r in records if r["split"] == "production"}
    assert months <= {"2025-11", "2025-12"}


def test_jsonl_round_trips(tmp_path, records):
    path = tmp_path / "demo.jsonl"
    write_jsonl(path, records)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == records
