"""The gallery of an image dataset: its page, the order and cells endpoints and the thumbnails,
as every role; bad parameters; thumbnails resized, cached and validated; the grid's order is
the table's."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from apps.datasets.models import Dataset, LabelEvent, Modality, Sample, SampleTag
from apps.datasets.selectors import media_path
from apps.datasets.thumbnails import THUMB_SIZE, thumbnail_name
from apps.explorer import selectors
from apps.explorer.selectors import exploration
from apps.projects.capabilities import Cap
from apps.quality.models import RunStatus, SampleScore, ScoringRun
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected

LABELS = ["cat", "dog"]


def picture(colour, size=(600, 400)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def make_images(project, n: int = 12, *, name: str = "pics") -> tuple[Dataset, ScoringRun, list]:
    dataset = Dataset.objects.create(
        project=project, name=name, labels=LABELS, modality=Modality.IMAGE
    )
    samples = []
    for i in range(n):
        path = f"img/{i}.png"
        default_storage.save(
            media_path(dataset, path), ContentFile(picture((20 * i % 256, 40, 200)))
        )
        samples.append(
            Sample.objects.create(
                dataset=dataset,
                external_id=f"p{i}",
                label=LABELS[i % 2],
                split="test" if i in (1, 3) else "train",
                image=path,
            )
        )
    run = ScoringRun.objects.create(dataset=dataset, version=1, status=RunStatus.DONE)
    for i, sample in enumerate(samples):
        SampleScore.objects.create(
            run=run,
            sample=sample,
            mislabel_score=i / n,
            likely_mislabeled=i == n - 1,
            suggested_label="cat",
            outlier_score=0.5,
            # Two groups: 0-1 leaked across splits, 2-3-4 with conflicting labels.
            duplicate_group={0: 7, 1: 7, 2: 9, 3: 9, 4: 9}.get(i),
            flags=["outlier"] if i == 5 else [],
            reasons=[f"reason {i}"],
        )
    return dataset, run, samples


@pytest.fixture
def pics(team):
    return make_images(team.project)


def urls(dataset, sample) -> list[str]:
    base = f"/datasets/{dataset.pk}"
    return [
        f"{base}/gallery/",
        f"{base}/gallery/?mode=groups&ordering=-mislabel_score",
        f"{base}/gallery/order/?cells=5",
        f"{base}/gallery/cells/?ids={sample.pk}",
        f"{base}/thumbs/{sample.pk}/",
    ]


@pytest.mark.parametrize("persona", PERSONAS)
def test_gallery_and_thumbnails_as_every_role(persona, team, pics, web_as):
    dataset, _run, samples = pics
    client = web_as(team.user(persona))
    for url in urls(dataset, samples[0]):
        assert client.get(url).status_code == expected(persona, Cap.VIEW, 200), url


def test_a_vendor_sees_nothing_of_the_gallery_even_of_assigned_items(team, pics, web_as):
    dataset, _run, samples = pics
    client = web_as(team.user("vendor"))
    for url in urls(dataset, samples[0]):
        assert client.get(url).status_code == 404, url


def test_another_projects_sample_is_not_served_through_this_dataset(team, pics, web_as):
    dataset, _run, _samples = pics
    other, _, theirs = make_images(team.other_project, 1, name="theirs")
    client = web_as(team.user("owner"))
    assert client.get(f"/datasets/{dataset.pk}/thumbs/{theirs[0].pk}/").status_code == 404
    body = client.get(f"/datasets/{dataset.pk}/gallery/cells/?ids={theirs[0].pk}").json()
    assert body["cells"] == []


@pytest.mark.parametrize(
    "url",
    [
        "gallery/order/?mode=nope",
        "gallery/order/?cells=x",
        "gallery/order/?cells=100000",
        "gallery/order/?q=%7Bbad",
        "gallery/order/?ordering=nothing",
        "gallery/order/?run=999999",
        "gallery/order/?view=abc",
        "gallery/cells/",
        "gallery/cells/?ids=1,x",
        "gallery/cells/?ids=" + ",".join(["1"] * 501),
        "gallery/cells/?ids=1&run=abc",
    ],
)
def test_bad_parameters_are_400_not_500(url, team, pics, web_as):
    dataset, _run, _samples = pics
    response = web_as(team.user("viewer")).get(f"/datasets/{dataset.pk}/{url}")
    assert response.status_code == 400, response.content
    assert "error" in response.json()


def test_a_bad_query_on_the_page_is_shown_not_raised(team, pics, web_as):
    dataset, _run, _samples = pics
    client = web_as(team.user("viewer"))
    for query in ("q=%7Bbad", "mode=nope", "ordering=nothing"):
        response = client.get(f"/datasets/{dataset.pk}/gallery/?{query}")
        assert response.status_code == 200
        assert b'role="alert"' in response.content


def test_the_gallery_is_for_image_datasets_and_the_table_links_to_it(team, pics, web_as, world):
    dataset, _run, _samples = pics
    text_dataset = world[0]
    client = web_as(team.user("viewer"))
    assert client.get(f"/datasets/{text_dataset.pk}/gallery/").status_code == 404
    assert client.get(f"/datasets/{text_dataset.pk}/gallery/order/").status_code == 404
    assert b"/gallery/" not in client.get(f"/datasets/{text_dataset.pk}/samples/").content
    q = json.dumps({"field": "split", "op": "=", "value": "test"})
    table = client.get(f"/datasets/{dataset.pk}/samples/", {"q": q, "ordering": "-mislabel_score"})
    assert b"/gallery/?q=" in table.content and b"ordering=-mislabel_score" in table.content


def test_the_grid_order_is_the_tables_order(team, pics, web_as):
    dataset, run, samples = pics
    client = web_as(team.user("viewer"))
    q = json.dumps({"field": "split", "op": "=", "value": "train"})
    body = client.get(
        f"/datasets/{dataset.pk}/gallery/order/",
        {"q": q, "ordering": "-mislabel_score", "cells": "3"},
    ).json()
    train = [s for s in samples if s.split == "train"]
    assert body["ids"] == [s.pk for s in reversed(train)]
    assert body["count"] == len(train) and body["truncated"] is False
    assert [c["id"] for c in body["cells"]] == body["ids"][:3]
    # The same order as the table's pages, for every kind of ordering.
    for ordering in ("id", "-id", "label", "-label", "margin", "-mislabel_score"):
        found = exploration(dataset, {"ordering": ordering})
        table = selectors.exploration_page(dataset, found, cursor=None, size=100).samples
        order = selectors.gallery_order(dataset, found).ids
        assert order == [s.pk for s in table], ordering


def test_the_grid_stops_at_its_limit_and_says_so(team, pics):
    dataset, _run, samples = pics
    order = selectors.gallery_order(dataset, exploration(dataset, {}), limit=5)
    assert order.ids == [s.pk for s in samples[:5]] and order.truncated


def test_cells_carry_badges_reasons_and_draft(team, pics, web_as):
    dataset, _run, samples = pics
    LabelEvent.objects.create(
        dataset=dataset, sample=samples[11], label="dog", source="review", version=None
    )
    client = web_as(team.user("viewer"))
    ids = ",".join(str(s.pk) for s in (samples[5], samples[11]))
    cells = {
        c["ext"]: c
        for c in client.get(f"/datasets/{dataset.pk}/gallery/cells/?ids={ids}").json()["cells"]
    }
    assert cells["p5"]["outlier"] and not cells["p5"]["likely"]
    assert cells["p11"]["likely"] and cells["p11"]["suggested"] == "cat"
    assert cells["p11"]["draft"] == {"removed": False, "label": "dog"}
    assert cells["p11"]["reasons"] == ["reason 11"]
    assert cells["p5"]["image"] == f"/datasets/{dataset.pk}/media/img/5.png"


def test_duplicate_groups_are_listed_largest_first(team, pics, web_as):
    dataset, _run, samples = pics
    body = (
        web_as(team.user("viewer")).get(f"/datasets/{dataset.pk}/gallery/order/?mode=groups").json()
    )
    assert body["groups"] == [3, 2]
    assert body["ids"] == [
        s.pk for s in (samples[2], samples[3], samples[4], samples[0], samples[1])
    ]


def test_duplicate_groups_need_a_run(team, web_as):
    dataset, run, _samples = make_images(team.project, 2)
    run.delete()
    client = web_as(team.user("viewer"))
    assert client.get(f"/datasets/{dataset.pk}/gallery/order/?mode=groups").status_code == 400
    page = client.get(f"/datasets/{dataset.pk}/gallery/?mode=groups")
    assert page.status_code == 200 and b"need a finished scoring run" in page.content


def test_a_thumbnail_is_resized_cached_and_validated(team, pics, web_as):
    dataset, _run, samples = pics
    client = web_as(team.user("viewer"))
    url = f"/datasets/{dataset.pk}/thumbs/{samples[3].pk}/"
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert "private" in response["Cache-Control"] and "max-age" in response["Cache-Control"]
    image = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert max(image.size) == THUMB_SIZE and image.size == (256, 171)
    cached = Path(settings.MEDIA_ROOT) / thumbnail_name(dataset, samples[3].image)
    assert cached.is_file() and cached.is_relative_to(
        Path(settings.MEDIA_ROOT) / f"datasets/{dataset.pk}/thumbs"
    )
    etag = response["ETag"]
    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag
    # The cached copy is what is served: the source is not read again.
    default_storage.delete(media_path(dataset, samples[3].image))
    assert client.get(url).status_code == 200


def test_a_small_image_is_not_enlarged_and_a_broken_one_is_404(team, web_as):
    dataset, _run, samples = make_images(team.project, 2)
    default_storage.delete(media_path(dataset, samples[0].image))
    default_storage.save(
        media_path(dataset, samples[0].image), ContentFile(picture("red", (40, 30)))
    )
    default_storage.delete(media_path(dataset, samples[1].image))
    default_storage.save(media_path(dataset, samples[1].image), ContentFile(b"not an image"))
    client = web_as(team.user("viewer"))
    small = client.get(f"/datasets/{dataset.pk}/thumbs/{samples[0].pk}/")
    assert Image.open(io.BytesIO(b"".join(small.streaming_content))).size == (40, 30)
    assert client.get(f"/datasets/{dataset.pk}/thumbs/{samples[1].pk}/").status_code == 404


def test_a_stored_path_leading_out_is_never_read_for_a_thumbnail(team, web_as):
    dataset, _run, samples = make_images(team.project, 1)
    Sample.objects.filter(pk=samples[0].pk).update(image="../../../../etc/passwd")
    response = web_as(team.user("owner")).get(f"/datasets/{dataset.pk}/thumbs/{samples[0].pk}/")
    assert response.status_code == 404


def test_a_selection_posted_as_one_list_is_what_the_bulk_action_tags(team, pics, web_as):
    dataset, _run, samples = pics
    chosen = [samples[2].pk, samples[4].pk, samples[7].pk]
    response = web_as(team.user("reviewer")).post(
        f"/datasets/{dataset.pk}/samples/bulk/",
        {
            "action": "tag",
            "tag": "look",
            "ids": ",".join(map(str, chosen)),
            "q": "",
            "back": f"/datasets/{dataset.pk}/gallery/",
        },
    )
    assert (
        response.status_code == 302 and response["Location"] == f"/datasets/{dataset.pk}/gallery/"
    )
    tagged = SampleTag.objects.filter(tag__dataset=dataset, tag__name="look")
    assert sorted(tagged.values_list("sample_id", flat=True)) == sorted(chosen)


def test_the_order_costs_the_same_queries_however_many_samples(
    team, web_as, django_assert_max_num_queries
):
    dataset, _run, _samples = make_images(team.project, 30)
    client = web_as(team.user("viewer"))
    with django_assert_max_num_queries(12):
        assert client.get(f"/datasets/{dataset.pk}/gallery/order/?cells=30").status_code == 200
