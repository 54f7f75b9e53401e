"""Scoring runs: state in PostgreSQL, the same result twice, degenerate data skipped with reasons."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from apps.quality import arrays
from apps.quality.models import RunStatus, SampleScore, ScoringRun
from apps.quality.services import scoring_run_execute, scoring_run_start, scoring_runs_recover
from tests.datasets.conftest import import_into
from workers.engine.embeddings import choose_method

pytestmark = pytest.mark.django_db(transaction=True)


def blobs(tmp_path, *, n=60, flips=(3, 40), with_vectors=True, classes=("cat", "dog")):
    """Two well-separated blobs; the samples in `flips` carry the other blob's label."""
    rng = np.random.default_rng(0)
    lines = [
        "id,text,label" + ("," + ",".join(f"emb_{j}" for j in range(8)) if with_vectors else "")
    ]
    for i in range(n):
        blob = i % len(classes)
        centre = np.eye(8)[blob] * 5
        vector = centre + rng.normal(scale=0.3, size=8)
        label = classes[(blob + 1) % len(classes)] if i in flips else classes[blob]
        row = f"s{i},sample {i},{label}"
        if with_vectors:
            row += "," + ",".join(f"{v:.4f}" for v in vector)
        lines.append(row)
    path = tmp_path / "blobs.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def scores(run) -> dict[str, SampleScore]:
    return {
        s.sample.external_id: s
        for s in SampleScore.objects.filter(run=run).select_related("sample")
    }


def test_vectors_come_back_as_arrays(team, tmp_path):
    dataset = import_into(team, blobs(tmp_path))
    ids, vectors = arrays.space_vectors(dataset.embedding_spaces.get().pk)
    assert vectors.shape == (60, 8) and list(ids) == sorted(ids)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 5, atol=1.5)


def test_inline_run_flags_the_planted_flips_with_reasons(team, tmp_path):
    dataset = import_into(team, blobs(tmp_path))
    out = io.StringIO()
    call_command(
        "score", dataset=dataset.pk, inline=True, json=True, stdout=out, stderr=io.StringIO()
    )
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["status"] == "done"
    run = ScoringRun.objects.get(pk=result["run"])
    found = scores(run)
    assert len(found) == 60
    flagged = {k for k, s in found.items() if s.likely_mislabeled}
    assert {"s3", "s40"} <= flagged and len(flagged) <= 4
    assert (
        found["s3"].suggested_label == "dog"  # s3 lies in the dog blob but is labelled cat
        and "labelled cat; the model says dog" in found["s3"].reasons[0]
    )
    assert re.search(r"\((\d+)% likely a wrong label\)", found["s3"].reasons[0])
    assert any("nearest neighbours are dog" in r for r in found["s3"].reasons), found["s3"].reasons
    assert all(
        s.x is not None and s.cluster is not None and 0 <= s.outlier_score <= 1
        for s in found.values()
    )
    assert (
        0 <= found["s3"].error_potential <= 1
        and found["s3"].error_potential > found["s2"].error_potential
    )

    # Running it again gives the same rows.
    ScoringRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    scoring_run_execute(run_id=run.pk)
    again = scores(run)
    assert {k: (s.likely_mislabeled, s.suggested_label) for k, s in again.items()} == {
        k: (s.likely_mislabeled, s.suggested_label) for k, s in found.items()
    }


def table(tmp_path, rows: list[tuple[str, str, list[float] | None]]):
    """A CSV of (text, label, embedding or None) rows."""
    width = next((len(v) for _t, _l, v in rows if v is not None), 0)
    lines = ["id,text,label" + "".join(f",emb_{j}" for j in range(width))]
    for i, (text, label, vector) in enumerate(rows):
        lines.append(f"s{i},{text},{label}" + "".join(f",{x}" for x in vector or []))
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def bare(tmp_path, labels: list[str]):
    """Ids and labels, nothing else: no text, no features, no embeddings."""
    path = tmp_path / "bare.csv"
    path.write_text("id,label\n" + "".join(f"s{i},{label}\n" for i, label in enumerate(labels)))
    return path


@pytest.mark.parametrize(
    "build,skipped,computed",
    [
        # One class only: nothing to confuse it with.
        (lambda d: blobs(d, classes=("cat",), flips=()), {"label_errors"}, {"duplicate_group"}),
        # Two samples: too few for neighbours; folds still give probabilities.
        (lambda d: blobs(d, n=2, flips=()), {"neighbours"}, {"mislabel_score"}),
        # Fewer samples than folds (3 < 5), one class with a single sample.
        (lambda d: blobs(d, n=3, flips=()), set(), {"mislabel_score", "outlier_score"}),
        # Classes with a single sample each, among a larger class.
        (
            lambda d: table(
                d,
                [(f"t{i}", "cat", [1.0, 0.1 * i, 0.0]) for i in range(20)]
                + [("d", "dog", [0.0, 1.0, 0.0]), ("e", "eel", [0.0, 0.0, 1.0])],
            ),
            set(),
            {"mislabel_score", "outlier_score"},
        ),
        # No embeddings and no text: nothing to compute them from.
        (
            lambda d: bare(d, ["cat" if i % 2 else "dog" for i in range(12)]),
            {"embeddings", "label_errors", "neighbours"},
            set(),
        ),
        # All-identical embeddings: one big duplicate group, no outliers, still finishes.
        (
            lambda d: table(
                d, [(f"t{i}", "cat" if i % 3 else "dog", [1.0, 2.0]) for i in range(30)]
            ),
            set(),
            {"mislabel_score", "duplicate_group", "outlier_score"},
        ),
    ],
    ids=[
        "one-class",
        "two-samples",
        "fewer-than-folds",
        "singleton-classes",
        "nothing",
        "identical",
    ],
)
def test_degenerate_data_finishes_with_reasons(build, skipped, computed, team, tmp_path):
    dataset = import_into(team, build(tmp_path))
    run = scoring_run_start(dataset=dataset, by=None, enqueue=False)
    run = scoring_run_execute(run_id=run.pk)
    assert run.status == RunStatus.DONE, run.error
    assert skipped <= set(run.skipped), run.skipped
    assert all(run.skipped[name] for name in skipped)  # each with its reason
    rows = SampleScore.objects.filter(run=run)
    assert rows.count() == dataset.samples.count()
    for name in computed:
        assert rows.filter(**{f"{name}__isnull": False}).exists(), name


def test_a_dataset_without_embeddings_gets_them_computed_for_scoring(team, tmp_path):
    words = ["purr whiskers meow", "bark fetch woof"]
    dataset = import_into(
        team,
        table(tmp_path, [(f"{words[i % 2]} {i}", ("cat", "dog")[i % 2], None) for i in range(40)]),
    )
    run = scoring_run_execute(run_id=scoring_run_start(dataset=dataset, by=None, enqueue=False).pk)
    assert run.status == RunStatus.DONE and "embeddings" not in run.skipped
    # MiniLM where the `embed` extra is installed, TF-IDF + SVD where it is not.
    assert dataset.embedding_spaces.get().method == choose_method("text")


def test_stalled_runs_are_resumed_then_failed(team, tmp_path):
    dataset = import_into(team, blobs(tmp_path))
    long_ago = timezone.now() - timedelta(hours=1)
    resumable = scoring_run_start(dataset=dataset, by=None, enqueue=False)
    hopeless = scoring_run_start(dataset=dataset, by=None, enqueue=False)
    ScoringRun.objects.filter(pk=resumable.pk).update(
        status=RunStatus.RUNNING, heartbeat_at=long_ago, attempts=1
    )
    ScoringRun.objects.filter(pk=hopeless.pk).update(
        status=RunStatus.RUNNING, heartbeat_at=long_ago, attempts=3
    )
    assert scoring_runs_recover() == {"failed": 1, "resumed": 1, "chunks_resumed": 0}
    hopeless.refresh_from_db()
    assert hopeless.status == RunStatus.FAILED and "3 times" in hopeless.error
    # The resumed run is claimable again (its heartbeat is stale) and finishes.
    assert scoring_run_execute(run_id=resumable.pk).status == RunStatus.DONE


def test_a_run_someone_else_holds_is_not_taken(team, tmp_path):
    dataset = import_into(team, blobs(tmp_path))
    run = scoring_run_start(dataset=dataset, by=None, enqueue=False)
    ScoringRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, heartbeat_at=timezone.now()
    )
    assert scoring_run_execute(run_id=run.pk).status == RunStatus.RUNNING
    assert SampleScore.objects.filter(run=run).count() == 0


@pytest.mark.parametrize(
    "persona", ["owner", "manager", "scientist", "reviewer", "vendor", "viewer", "outsider"]
)
def test_scoring_run_endpoints_as_every_role(persona, team, tmp_path, api_as):
    from apps.projects.capabilities import Cap
    from tests.projects.test_access_matrix import expected

    dataset = import_into(team, blobs(tmp_path))
    client = api_as(team.user(persona))
    base = f"/api/datasets/{dataset.pk}/scoring-runs/"
    started = client.post(base, {}, format="json")
    assert started.status_code == expected(persona, Cap.EDIT_DATA, 202)
    assert client.get(base).status_code == expected(persona, Cap.VIEW, 200)
    run = scoring_run_start(dataset=dataset, by=None, enqueue=False)
    assert client.get(f"{base}{run.pk}/").status_code == expected(persona, Cap.VIEW, 200)
    cancel = client.delete(f"{base}{run.pk}/")
    assert cancel.status_code == expected(persona, Cap.EDIT_DATA, 204)
    run.refresh_from_db()
    assert (run.status == RunStatus.CANCELLED) == (cancel.status_code == 204)


def test_duplicates_leakage_and_drift_land_in_the_summary(team, tmp_path):
    rng = np.random.default_rng(1)
    lines = ["id,text,label,split," + ",".join(f"emb_{j}" for j in range(8))]
    for i in range(80):
        blob = i % 2
        vector = np.eye(8)[blob] * 5 + rng.normal(scale=0.5, size=8)
        split = "production" if i >= 60 else ("test" if i % 7 == 0 else "train")
        if split == "production":
            vector = np.eye(8)[4] * 5 + rng.normal(scale=0.5, size=8)  # a topic training never saw
        label = "" if split == "production" else ("cat", "dog")[blob]
        lines.append(f"p{i},t {i},{label},{split}," + ",".join(f"{v:.4f}" for v in vector))
    lines.append(
        lines[2].replace("p1,", "leak,", 1).replace(",train,", ",test,")
    )  # a copy of p1 in test
    lines.append(lines[5].replace("p4,", "twin,", 1))  # a copy of p4 in train: one is redundant
    path = tmp_path / "drift.csv"
    path.write_text("\n".join(lines) + "\n")
    dataset = import_into(team, path)
    run = scoring_run_execute(run_id=scoring_run_start(dataset=dataset, by=None, enqueue=False).pk)
    assert run.status == RunStatus.DONE, run.error
    found = scores(run)
    assert (
        found["p1"].duplicate_group is not None
        and found["p1"].duplicate_group == found["leak"].duplicate_group
    )
    assert run.summary["duplicates"]["n_leakage_groups"] >= 1
    assert {"duplicate", "leaked"} <= set(found["leak"].flags)
    # Leaked means an evaluation sample the model has seen, not the train copy it came from:
    # the count, the flag and the table agree.
    assert "leaked" not in found["p1"].flags
    leaked = [ext for ext, s in found.items() if "leaked" in s.flags]
    assert len(leaked) == run.summary["duplicates"]["n_leaked_samples"]
    assert run.summary["flag_counts"]["leaked"] == len(leaked)
    assert any("leaked: a near duplicate is in train" in r for r in found["leak"].reasons)
    redundant = set(run.summary["redundancy"]["sample_ids"])
    twins = {dataset.samples.get(external_id=x).pk for x in ("p4", "twin")}
    assert twins & redundant  # one of the two copies may go
    groups: dict[int, set[int]] = {}
    for score in found.values():
        if score.duplicate_group is not None:
            groups.setdefault(score.duplicate_group, set()).add(score.sample_id)
    assert all(members - redundant for members in groups.values())  # every group keeps one
    assert run.summary["drift"]["auc"] > 0.9 and run.summary["drift"]["p_value"] < 0.01
    # Production samples come from a topic training never saw: most are outside its coverage.
    production = [s for ext, s in found.items() if ext.startswith("p") and int(ext[1:]) >= 60]
    outside = [s for s in production if "out_of_coverage" in s.flags]
    assert len(outside) >= 0.8 * len(production)
    assert all(s.coverage is not None and s.coverage > 0.95 for s in outside)
    assert all(
        s.coverage is None
        for ext, s in found.items()
        if not ext.startswith("p") or int(ext[1:]) < 60
    )
    assert run.summary["drift"]["n_out_of_coverage"] == len(outside)
    assert run.summary["flag_counts"]["out_of_coverage"] == len(outside)


def test_export_scores_command_and_api(team, tmp_path, api_as):
    import csv as csv_module

    import pyarrow.parquet as pq
    from django.core.management.base import CommandError

    dataset = import_into(team, blobs(tmp_path))
    with pytest.raises(CommandError, match="no finished scoring run"):
        call_command(
            "export_scores", str(tmp_path / "s.csv"), dataset=dataset.pk, stderr=io.StringIO()
        )
    run = scoring_run_execute(run_id=scoring_run_start(dataset=dataset, by=None, enqueue=False).pk)
    call_command("export_scores", str(tmp_path / "s.csv"), dataset=dataset.pk, stderr=io.StringIO())
    call_command(
        "export_scores",
        str(tmp_path / "s.parquet"),
        dataset=dataset.pk,
        run=run.pk,
        stderr=io.StringIO(),
    )
    rows = {r["id"]: r for r in csv_module.DictReader((tmp_path / "s.csv").open(newline=""))}
    required = {
        "id",
        "label",
        "suggested_label",
        "likely_mislabeled",
        "mislabel_score",
        "error_potential",
        "outlier_score",
        "duplicate_group",
        "cluster",
        "x",
        "y",
    }
    assert len(rows) == 60 and required <= set(rows["s3"])
    assert rows["s3"]["likely_mislabeled"] == "True" and rows["s3"]["suggested_label"] == "dog"
    table = pq.read_table(tmp_path / "s.parquet").to_pylist()
    assert len(table) == 60 and required <= set(table[0])
    assert next(r for r in table if r["id"] == "s3")["likely_mislabeled"] is True

    base = f"/api/datasets/{dataset.pk}/scoring-runs/{run.pk}/scores/"
    response = api_as(team.user("scientist")).get(base + "?format=parquet")
    assert response.status_code == 200 and "scores" in response["Content-Disposition"]
    assert api_as(team.user("reviewer")).get(base).status_code == 403
    assert api_as(team.user("vendor")).get(base).status_code == 404


@pytest.mark.parametrize(
    "persona", ["owner", "manager", "scientist", "reviewer", "vendor", "viewer", "outsider"]
)
def test_scoring_panel_as_every_role(persona, team, tmp_path, web_as):
    from apps.projects.capabilities import Cap
    from tests.projects.test_access_matrix import expected

    dataset = import_into(team, blobs(tmp_path))
    client = web_as(team.user(persona))
    started = client.post(f"/datasets/{dataset.pk}/scoring/", headers={"HX-Request": "true"})
    assert started.status_code == expected(persona, Cap.EDIT_DATA, 200)
    assert ScoringRun.objects.filter(dataset=dataset).exists() == (started.status_code == 200)
    shown = client.get(f"/datasets/{dataset.pk}/scoring/", headers={"HX-Request": "true"})
    assert shown.status_code == expected(persona, Cap.VIEW, 200)
    if started.status_code == 200:
        assert "waiting for a worker" in shown.content.decode()


def test_score_now_on_an_empty_dataset_says_why_in_place(team, web_as):
    from apps.datasets.models import Dataset

    dataset = Dataset.objects.create(project=team.project, name="empty", labels=["a", "b"])
    client = web_as(team.user("owner"))
    answer = client.post(f"/datasets/{dataset.pk}/scoring/", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert "no version to score yet; import samples first" in answer.content.decode()
    assert not ScoringRun.objects.filter(dataset=dataset).exists()


def test_weak_slice_and_active_learning_pick(team, tmp_path):
    rng = np.random.default_rng(2)
    lines = ["id,text,label,split,meta_channel," + ",".join(f"emb_{j}" for j in range(8))]
    for i in range(220):
        blob = i % 2
        vector = np.eye(8)[blob] * 5 + rng.normal(scale=0.4, size=8)
        channel = "phone" if i < 60 else "email"
        flipped = i < 60 and i % 4 == 0  # 15 errors, all in the phone channel
        if i >= 200:
            split, label = "production", ""
        else:
            split, label = "train", ("cat", "dog")[(blob + flipped) % 2]
        lines.append(
            f"w{i},t {i},{label},{split},{channel}," + ",".join(f"{v:.4f}" for v in vector)
        )
    path = tmp_path / "slices.csv"
    path.write_text("\n".join(lines) + "\n")
    dataset = import_into(team, path)
    run = scoring_run_execute(run_id=scoring_run_start(dataset=dataset, by=None, enqueue=False).pk)
    assert run.status == RunStatus.DONE, run.error
    slices = run.summary["weak_slices"]
    assert slices and slices[0]["column"] == "channel" and slices[0]["value"] == "phone"
    picked = run.summary["active_learning"]
    production = set(dataset.samples.filter(split="production").values_list("pk", flat=True))
    assert picked["budget"] == 2 and set(picked["sample_ids"]) <= production


def test_inline_failure_is_reported_with_its_reason(team, tmp_path, monkeypatch):
    from django.core.management.base import CommandError

    from apps.quality import pipeline

    dataset = import_into(team, blobs(tmp_path))

    def broken(run, stages):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pipeline, "finish", broken)
    out = io.StringIO()
    with pytest.raises(CommandError, match="failed: RuntimeError: disk full"):
        call_command(
            "score", dataset=dataset.pk, inline=True, json=True, stdout=out, stderr=io.StringIO()
        )
    report = json.loads(out.getvalue().strip().splitlines()[-1])
    assert report["status"] == "failed" and "disk full" in report["error"]
    run = ScoringRun.objects.get(pk=report["run"])
    assert run.status == RunStatus.FAILED
    # The chunks were computed before the finish failed; their results go with the run.
    assert run.chunks.filter(status="done").exists()
    assert not default_storage.exists(pipeline._artefact_path(run, "neighbours-0"))


def test_unknown_or_unfinished_run_is_404(team, tmp_path, api_as):
    dataset = import_into(team, blobs(tmp_path))
    run = scoring_run_start(dataset=dataset, by=None, enqueue=False)
    client = api_as(team.user("owner"))
    base = f"/api/datasets/{dataset.pk}/scoring-runs/"
    assert client.get(f"{base}999999/").status_code == 404
    assert client.get(f"{base}{run.pk}/scores/").status_code == 404  # queued, not finished
