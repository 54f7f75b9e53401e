"""What a scoring run flags beyond label errors, and the dataset health page built on it."""

from __future__ import annotations

import io
import json
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from django.core.management import call_command

from apps.datasets.models import ModelRun
from apps.projects.capabilities import Cap
from apps.quality.models import Flag, RunStatus
from apps.quality.services import scoring_run_execute, scoring_run_start
from tests.conftest import PERSONAS
from tests.datasets.conftest import import_into
from tests.datasets.test_model_runs import log_run
from tests.projects.test_access_matrix import expected
from tests.quality.test_scoring_runs import blobs, scores

pytestmark = pytest.mark.django_db(transaction=True)


def score(dataset, model_run=None):
    run = scoring_run_start(dataset=dataset, by=None, model_run=model_run, enqueue=False)
    run = scoring_run_execute(run_id=run.pk)
    assert run.status == RunStatus.DONE, run.error
    return run


def model_run(team, dataset, tmp_path, rows: dict[str, list[tuple[int, float]]]) -> ModelRun:
    """Log a model run: per sample, (epoch, probability of cat) pairs."""
    lines = ["id,epoch,prob_cat,prob_dog"]
    for ext, probs in rows.items():
        lines += [f"{ext},{epoch},{p:.4f},{1 - p:.4f}" for epoch, p in probs]
    path = tmp_path / "run.csv"
    path.write_text("\n".join(lines) + "\n")
    job = log_run(dataset, team.user("scientist"), path, name="resnet")
    assert job.status == "done", job.problems
    return ModelRun.objects.get(pk=job.result["model_run_id"])


def confident(ext: str) -> float:
    """The blobs' true class (even: cat) at 0.95."""
    return 0.95 if int(ext[1:]) % 2 == 0 else 0.05


def test_training_dynamics_raise_the_error_potential_of_unstable_samples(team, tmp_path):
    dataset = import_into(team, blobs(tmp_path, flips=()))
    ids = [f"s{i}" for i in range(60)]
    # Every sample ends confident and right; s10 flip-flopped while training, s12 was learnt late.
    history = {ext: [(e, confident(ext)) for e in (1, 2, 3, 0)] for ext in ids}
    history["s10"] = [(1, 0.1), (2, 0.9), (3, 0.1), (0, 0.95)]
    history["s12"] = [(1, 0.2), (2, 0.3), (3, 0.6), (0, 0.95)]
    run = score(dataset, model_run(team, dataset, tmp_path, history))
    assert run.summary["training_dynamics"] is True
    found = scores(run)
    steady = max(found[ext].error_potential for ext in ids if ext not in ("s10", "s12"))
    assert found["s10"].error_potential > steady + 0.2
    assert found["s12"].error_potential > steady + 0.1
    assert found["s10"].error_potential > found["s12"].error_potential  # variability counts too

    final_only = score(
        dataset,
        model_run(team, dataset, tmp_path, {ext: [(0, confident(ext))] for ext in ids}),
    )
    assert final_only.summary["training_dynamics"] is False
    assert "training_dynamics" in final_only.skipped
    assert len({round(s.error_potential, 6) for s in scores(final_only).values()}) == 1


def test_boundary_samples_class_overlap_and_the_confusion_matrix(team, tmp_path):
    dataset = import_into(team, blobs(tmp_path, flips=(3,)))
    rows = {f"s{i}": [(0, confident(f"s{i}"))] for i in range(60)}
    rows["s8"] = [(0, 0.52)]  # a cat the model can barely place
    run = score(dataset, model_run(team, dataset, tmp_path, rows))
    found = scores(run)
    assert "boundary" in found["s8"].flags
    assert any(
        "on the boundary between cat and dog (margin 0.04)" in r for r in found["s8"].reasons
    )
    assert [ext for ext, s in found.items() if "boundary" in s.flags] == ["s8"]
    # s3 is a dog labelled cat: the model (right) says dog. Given label ↓, predicted →.
    assert run.summary["confusion"] == [[30, 1], [0, 29]]
    assert run.summary["class_pairs"][0]["classes"] == ["cat", "dog"]
    assert run.summary["label_distribution"]["train"]["counts"] == {"cat": 31, "dog": 29}
    assert run.summary["label_distribution"]["train"]["imbalance"] == round(31 / 29, 2)
    noise = run.summary["noise_by_split"]["train"]
    assert noise["labelled"] == 60 and noise["flagged"] == 1
    assert noise["low"] < noise["rate"] < noise["high"] and noise["rate"] == pytest.approx(1 / 60)


def test_text_clusters_carry_their_top_terms_and_model_accuracy(team, tmp_path, web_as):
    topics = {
        "billing": "refund invoice charged twice card payment",
        "shipping": "parcel courier delivery late tracking",
    }
    lines = ["id,text,label"]
    for i in range(40):
        label = ("billing", "shipping")[i % 2]
        words = topics[label].split()
        lines.append(f"t{i},{' '.join(words[j % 5] for j in range(i % 3, i % 3 + 4))},{label}")
    path = tmp_path / "texts.csv"
    path.write_text("\n".join(lines) + "\n")
    dataset = import_into(team, path, "support")
    run = score(dataset)
    clusters = run.summary["clusters"]
    assert clusters and sum(c["size"] for c in clusters) == 40
    terms = {t for c in clusters for t in c["top_terms"]}
    assert terms & set(topics["billing"].split()) and terms & set(topics["shipping"].split())
    for c in clusters:
        assert 0 <= c["accuracy"] <= 1 and c["majority_label"] in topics
        assert 0 <= c["p_value"] <= c["q_value"] <= 1 and isinstance(c["significant"], bool)
    # The page says when no cluster is significantly worse, and only then.
    for significant in (False, True):
        for c in run.summary["clusters"]:
            c["significant"] = False
        run.summary["clusters"][0]["significant"] = significant
        run.save(update_fields=["summary"])
        html = web_as(team.user("viewer")).get(f"/datasets/{dataset.pk}/health/").content.decode()
        assert ('id="clusters-none-significant"' in html) == (not significant)


def test_flag_filter_lists_exactly_the_flagged_samples(team, tmp_path, web_as):
    dataset = import_into(team, blobs(tmp_path))
    run = score(dataset)
    found = scores(run)
    flagged = {ext for ext, s in found.items() if Flag.MISLABELED in s.flags}
    assert flagged == {"s3", "s40"}
    assert run.summary["flag_counts"]["mislabeled"] == 2
    # An old-style link: redirected to the same filter as a query.
    page = web_as(team.user("viewer")).get(
        f"/datasets/{dataset.pk}/samples/?flag=mislabeled", follow=True
    )
    listed = {ext for ext in found if f">{ext}</a>" in page.content.decode()}
    assert listed == flagged


@pytest.mark.parametrize("persona", PERSONAS)
def test_health_page_as_every_role(persona, team, tmp_path, web_as):
    dataset = import_into(team, blobs(tmp_path))
    score(dataset)
    page = web_as(team.user(persona)).get(f"/datasets/{dataset.pk}/health/")
    assert page.status_code == expected(persona, Cap.VIEW, 200)
    if page.status_code == 200:
        html = page.content.decode()
        assert f"/datasets/{dataset.pk}/samples/?flag=mislabeled" in html
        assert 'id="noise"' in html and 'id="confusion"' in html and 'id="clusters"' in html
        assert "/methods/#likely-mislabeled" in html
        clusters = html[html.index('id="clusters"') : html.index('id="slices"')]
        assert "q-value" in clusters and "Rest of the data" in clusters


def test_health_page_before_any_run_says_so(team, tmp_path, web_as):
    dataset = import_into(team, blobs(tmp_path))
    html = web_as(team.user("scientist")).get(f"/datasets/{dataset.pk}/health/").content.decode()
    assert "Not scored yet" in html and "dataset page" in html


def test_export_carries_flags_and_coverage(team, tmp_path):
    import csv

    dataset = import_into(team, blobs(tmp_path))
    score(dataset)
    out = tmp_path / "scores.csv"
    call_command("export_scores", str(out), dataset=dataset.pk, stdout=io.StringIO())
    rows = {r["id"]: r for r in csv.DictReader(out.open())}
    assert (
        "mislabeled" in rows["s3"]["flags"].split()
        and "mislabeled" not in rows["s1"]["flags"].split()
    )
    assert "coverage" in rows["s3"] and np.isfinite(float(rows["s3"]["mislabel_score"]))


def test_an_unlabelled_copy_is_a_duplicate_but_not_a_label_conflict(team, tmp_path):
    path = blobs(tmp_path, flips=())
    lines = path.read_text().splitlines()
    copy = lines[5].split(",")  # s4, a cat
    lines.append(",".join(["copy", copy[1], "", *copy[3:]]))
    path.write_text("\n".join(lines) + "\n")
    found = scores(score(import_into(team, path)))
    assert found["copy"].duplicate_group == found["s4"].duplicate_group is not None
    assert not [ext for ext, s in found.items() if "conflicting" in s.flags]
    assert not any("disagree on the label" in r for s in found.values() for r in s.reasons)


def test_confusion_cells_and_clusters_open_exactly_their_samples(team, tmp_path, web_as):
    import html as html_lib
    import re

    dataset = import_into(team, blobs(tmp_path))
    run = score(dataset)
    found = scores(run)
    client = web_as(team.user("reviewer"))
    page = client.get(f"/datasets/{dataset.pk}/health/").content.decode()
    matrix = run.summary["suggestion_matrix"]
    classes = run.summary["classes"]
    cells = re.findall(r'<td class="right num (?:diag|off)[^"]*"><a href="([^"]+)">(\d+)</a>', page)
    assert len(cells) == sum(1 for row in matrix for n in row if n)
    for url, count in cells:
        listed = client.get(html_lib.unescape(url)).content.decode()
        query = json.loads(parse_qs(urlparse(html_lib.unescape(url)).query)["q"][0])
        given, suggested = (part["value"] for part in query["all"])
        want = {
            ext
            for ext, s in found.items()
            if s.sample.label == given and s.suggested_label == suggested
        }
        assert int(count) == len(want) == matrix[classes.index(given)][classes.index(suggested)]
        assert {ext for ext in found if f">{ext}</a>" in listed} == want
    # s3 and s40 carry the other blob's label: the off-diagonal cells hold exactly them.
    off = [
        (url, n) for url, n in cells if "suggested_label" in url and int(n) and "diag" not in url
    ]
    assert sum(matrix[i][j] for i in range(2) for j in range(2) if i != j) == 2 and off
    cluster_links = re.findall(r'<td class="num"><a href="([^"]+)">(\d+)</a>', page)
    assert cluster_links
    url, number = cluster_links[0]
    listed = client.get(html_lib.unescape(url)).content.decode()
    want = {ext for ext, s in found.items() if s.cluster == int(number)}
    assert want and {ext for ext in found if f">{ext}</a>" in listed} == want


@pytest.mark.parametrize("persona", ["owner", "reviewer"])
def test_scores_of_an_older_version_say_so_and_offer_to_score_again(
    persona, team, tmp_path, web_as
):
    from apps.datasets.services import sample_relabel, version_commit

    dataset = import_into(team, blobs(tmp_path))
    run = score(dataset)
    client = web_as(team.user(persona))
    pages = [f"/datasets/{dataset.pk}/{page}" for page in ("health/", "samples/")]
    sample = dataset.samples.get(external_id="s3")
    pages.append(f"/datasets/{dataset.pk}/samples/{sample.pk}/")
    for url in pages:  # the scores are of the newest version: no banner
        assert 'id="stale-scores"' not in client.get(url).content.decode()
    sample_relabel(sample=sample, label="dog", by=team.user("owner"))
    version = version_commit(dataset=dataset, by=team.user("owner"), message="s3 is a dog")
    assert version.number > run.version
    for url in pages:
        html = client.get(url).content.decode()
        banner = html[html.index('id="stale-scores"') :].split("</div>")[0]
        assert f"from version {run.version}; the dataset is at version {version.number}" in banner
        assert "1 sample relabelled, 0 added and 0 removed" in banner
        # Who may edit the data may score it again; the others are told who can.
        assert ("Score version" in banner) == (persona == "owner"), persona
    if persona == "owner":
        answer = client.post(f"/datasets/{dataset.pk}/scoring/")
        assert answer.status_code == 302
        queued = dataset.scoring_runs.first()
        assert queued.version == version.number and queued.status in ("queued", "running")
        html = client.get(pages[0]).content.decode()
        assert f"Scoring run {queued.pk} of version {version.number}" in html
        assert "Score version" not in html
        assert "Not scored yet" not in html


def test_health_during_the_first_run_says_it_is_under_way(team, tmp_path, web_as):
    dataset = import_into(team, blobs(tmp_path))
    scoring_run_start(dataset=dataset, by=None, enqueue=False)
    html = web_as(team.user("viewer")).get(f"/datasets/{dataset.pk}/health/").content.decode()
    assert "The first scoring run is under way" in html and "Not scored yet" not in html


def test_a_run_summary_missing_newer_figures_still_renders(team, tmp_path, web_as):
    """Runs scored by older versions kept fewer figures: the page shows what there is."""
    dataset = import_into(team, blobs(tmp_path))
    run = score(dataset)
    run.summary["noise_by_split"] = {"train": {"rate": 0.05}}
    run.save(update_fields=["summary"])
    page = web_as(team.user("viewer")).get(f"/datasets/{dataset.pk}/health/")
    assert page.status_code == 200 and "5.0%" in page.content.decode()


def test_charts_bars_open_exactly_their_samples(team, tmp_path, web_as):
    import html as html_lib
    import re

    from apps.datasets.services import sample_relabel, version_commit
    from apps.quality.models import SampleScore

    dataset = import_into(team, blobs(tmp_path))
    run = score(dataset)
    client = web_as(team.user("viewer"))
    page = client.get(f"/datasets/{dataset.pk}/health/").content.decode()
    chart = page[page.index('id="dist-mislabel_score"') :].split("</figure>")[0]
    bars = re.findall(r'<a href="([^"]+)"><title>([^<]+)</title>', chart)
    counts = [int(re.search(r": (\d+) sample", title).group(1)) for _url, title in bars]
    scored = SampleScore.objects.filter(run=run, mislabel_score__isnull=False).count()
    assert bars and sum(counts) == scored
    flagged = sum(int(re.search(r"(\d+) flagged", t).group(1)) for _u, t in bars)
    assert flagged == run.summary["flag_counts"]["mislabeled"] == 2
    for (url, _title), count in zip(bars, counts, strict=True):
        listed = client.get(html_lib.unescape(url)).content.decode()
        assert len(re.findall(r'data-sample="\d+"', listed)) == min(count, 50)
    per_class = page[page.index('id="per-class"') :].split("</figure>")[0]
    assert "cat" in per_class and "dog" in per_class and "% flagged" in per_class
    assert 'id="noise-versions"' not in page  # one scored version: nothing to draw across
    sample = dataset.samples.get(external_id="s3")
    sample_relabel(sample=sample, label="dog", by=team.user("owner"))
    version_commit(dataset=dataset, by=team.user("owner"), message="s3 is a dog")
    score(dataset)
    page = client.get(f"/datasets/{dataset.pk}/health/").content.decode()
    lines = page[page.index('id="noise-versions"') :].split("</figure>")[0]
    assert "version 1:" in lines and "version 2:" in lines
