"""A project may score its datasets again by itself after each import and committed version:
chosen on the dataset page or through the API, by those who may start scoring runs."""

from __future__ import annotations

import pytest

from apps.datasets.services import sample_relabel, version_commit
from apps.projects.capabilities import Cap
from apps.quality.models import RunStatus, ScoringPolicy, ScoringRun
from apps.quality.services import scoring_policy_set
from tests.conftest import PERSONAS
from tests.datasets.conftest import import_into
from tests.projects.test_access_matrix import expected
from tests.quality.test_scoring_runs import blobs

pytestmark = pytest.mark.django_db(transaction=True)


def queued(dataset) -> list[int]:
    return list(
        dataset.scoring_runs.filter(status__in=(RunStatus.QUEUED, RunStatus.RUNNING))
        .order_by("version")
        .values_list("version", flat=True)
    )


def test_changes_are_scored_only_when_the_project_asks(team, tmp_path):
    dataset = import_into(team, blobs(tmp_path))
    assert queued(dataset) == []  # never chosen: nothing starts by itself
    scoring_policy_set(project=team.project, after_changes=True, by=team.user("owner"))
    sample = dataset.samples.get(external_id="s3")
    sample_relabel(sample=sample, label="dog", by=team.user("scientist"))
    version = version_commit(dataset=dataset, by=team.user("scientist"), message="s3 is a dog")
    assert queued(dataset) == [version.number]
    run = dataset.scoring_runs.first()
    assert run.created_by == team.user("scientist")
    # An import is a change too; a run of the newest version already queued is not doubled.
    more = tmp_path / "more.csv"
    more.write_text("id,text,label\nnew1,a new one,cat\n")
    import_into(team, more)
    assert queued(dataset) == [version.number, version.number + 1]
    sample_relabel(sample=sample, label="cat", by=team.user("scientist"))
    scoring_policy_set(project=team.project, after_changes=False, by=team.user("owner"))
    version_commit(dataset=dataset, by=team.user("scientist"), message="back to cat")
    assert len(queued(dataset)) == 2


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_policy_through_the_api_as_every_role(persona, team, api_as):
    client = api_as(team.user(persona))
    url = f"/api/projects/{team.project.pk}/scoring-policy/"
    read = client.get(url)
    assert read.status_code == expected(persona, Cap.VIEW, 200)
    if read.status_code == 200:
        assert read.json() == {"after_changes": False}
    changed = client.put(url, {"after_changes": True}, format="json")
    assert changed.status_code == expected(persona, Cap.EDIT_DATA, 200)
    assert ScoringPolicy.objects.filter(after_changes=True).exists() == (changed.status_code == 200)
    if changed.status_code == 200:
        assert client.get(url).json() == {"after_changes": True}
        bad = client.put(url, {"after_changes": "sometimes"}, format="json")
        assert bad.status_code == 400 and "after_changes" in bad.json()


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_checkbox_on_the_dataset_page_as_every_role(persona, team, tmp_path, web_as):
    dataset = import_into(team, blobs(tmp_path))
    client = web_as(team.user(persona))
    page = client.get(f"/datasets/{dataset.pk}/")
    if page.status_code == 200:
        assert ('id="scoring-policy"' in page.content.decode()) == (
            persona in ("owner", "manager", "scientist")
        )
    answer = client.post(
        f"/datasets/{dataset.pk}/scoring/policy/",
        {"after_changes": "on"},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == expected(persona, Cap.EDIT_DATA, 200)
    assert ScoringPolicy.objects.filter(after_changes=True).exists() == (answer.status_code == 200)
    if answer.status_code == 200:
        assert (
            "checked" in answer.content.decode().split('id="scoring-policy"')[1].split("</form>")[0]
        )
    assert not ScoringRun.objects.exists()
