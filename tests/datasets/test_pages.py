"""Dataset pages, tried as every role: members see them, vendors and outsiders get 404."""

from __future__ import annotations

import pytest

from apps.datasets.models import Dataset, ImportJob, LabelEvent, Sample
from apps.projects.capabilities import Cap
from tests.conftest import PERSONAS
from tests.datasets.conftest import import_into
from tests.datasets.test_api import dataset  # noqa: F401 - the fixture
from tests.projects.test_access_matrix import expected

pytestmark = pytest.mark.django_db(transaction=True)


def r1() -> Sample:
    return Sample.objects.get(external_id="r1")


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    "path",
    [
        "/datasets/{d}/",
        "/datasets/{d}/samples/",
        "/datasets/{d}/samples/{s}/",
        "/datasets/{d}/versions/",
        "/datasets/{d}/samples/?split=test&label=dog&search=dog",
    ],
)
def test_pages(persona, path, team, dataset, web_as):  # noqa: F811
    # Old-style filter links redirect to the same filters as a query.
    response = web_as(team.user(persona)).get(path.format(d=dataset.pk, s=r1().pk), follow=True)
    assert response.status_code == expected(persona, Cap.VIEW, 200)


@pytest.mark.parametrize("persona", PERSONAS)
def test_project_page_lists_datasets_for_those_who_may_see_them(persona, team, dataset, web_as):  # noqa: F811
    response = web_as(team.user(persona)).get(f"/projects/{team.project.slug}/")
    if persona == "outsider":
        assert response.status_code == 404
        return
    assert ("animals" in response.content.decode()) == (persona != "vendor")


@pytest.mark.parametrize("persona", PERSONAS)
def test_relabel_from_the_sample_page(persona, team, dataset, web_as):  # noqa: F811
    response = web_as(team.user(persona)).post(
        f"/datasets/{dataset.pk}/samples/{r1().pk}/",
        {"action": "relabel", "label": "dog", "reason": "looks like one"},
    )
    assert response.status_code == expected(persona, Cap.CURATE, 302)
    assert LabelEvent.objects.filter(version=None).exists() == (response.status_code == 302)


@pytest.mark.parametrize("persona", PERSONAS)
def test_commit_from_the_versions_page(persona, team, dataset, web_as):  # noqa: F811
    from apps.datasets.services import sample_relabel

    sample_relabel(sample=r1(), label="dog", by=team.user("owner"))
    response = web_as(team.user(persona)).post(
        f"/datasets/{dataset.pk}/versions/", {"message": "fix"}
    )
    assert response.status_code == expected(persona, Cap.CURATE, 302)
    assert dataset.versions.count() == (2 if response.status_code == 302 else 1)


@pytest.mark.parametrize("persona", PERSONAS)
def test_upload_from_the_dataset_page(persona, team, dataset, web_as, tmp_path):  # noqa: F811
    path = tmp_path / "more.csv"
    path.write_text("id,text,label\nn1,new,cat\n")
    with path.open("rb") as f:
        response = web_as(team.user(persona)).post(
            f"/datasets/{dataset.pk}/",
            {"file": f, "on_duplicate": "reject"},
            headers={"HX-Request": "true"},
        )
    assert response.status_code == expected(persona, Cap.EDIT_DATA, 200)
    assert ImportJob.objects.filter(file_name="more.csv").exists() == (response.status_code == 200)


@pytest.mark.parametrize("persona", PERSONAS)
def test_create_dataset_from_the_project_page(persona, team, web_as):
    response = web_as(team.user(persona)).post(
        f"/projects/{team.project.slug}/datasets/new/",
        {"name": "fresh", "modality": "tabular", "labels": "a, b"},
    )
    assert response.status_code == expected(persona, Cap.EDIT_DATA, 302)
    created = Dataset.objects.filter(name="fresh").first()
    assert (created is not None) == (response.status_code == 302)
    if created:
        assert created.labels == ["a", "b"]


def test_samples_table_pages_by_key_not_offset(team, dataset, web_as):  # noqa: F811
    import re

    client = web_as(team.user("viewer"))
    from apps.explorer.views import table as views

    views.PAGE, old = 2, views.PAGE
    try:
        html = client.get(f"/datasets/{dataset.pk}/samples/").content.decode()
        assert ">r1</a>" in html and ">r2</a>" in html and ">r3</a>" not in html
        assert "offset" not in html
        following = re.search(r'href="([^"]*cursor=[^"]*)"[^>]*rel="next"', html).group(1)
        second = client.get(following.replace("&amp;", "&")).content.decode()
        assert ">r3</a>" in second and ">r1</a>" not in second
    finally:
        views.PAGE = old


def test_sample_text_is_escaped(team, dataset, web_as):  # noqa: F811
    Sample.objects.filter(external_id="r1").update(
        text='<script>alert("x")</script><img src=x onerror=alert(1)>'
    )
    html = (
        web_as(team.user("viewer"))
        .get(f"/datasets/{dataset.pk}/samples/{r1().pk}/")
        .content.decode()
    )
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_sample_file_as_every_role_imports_as_it_is(persona, team, tmp_path, web_as):
    tickets = Dataset.objects.create(
        project=team.project, name="tickets", labels=["billing", "shipping"], modality="text"
    )
    answer = web_as(team.user(persona)).get(f"/datasets/{tickets.pk}/sample-file.csv")
    assert answer.status_code == expected(persona, Cap.VIEW, 200)
    if answer.status_code != 200:
        return
    assert 'filename="loupe-sample-text.csv"' in answer["Content-Disposition"]
    path = tmp_path / "sample.csv"
    path.write_bytes(answer.content)
    imported = import_into(team, path, "tickets")
    assert imported.samples.count() == 3
    assert set(imported.samples.values_list("label", flat=True)) == {"billing", "shipping", None}
