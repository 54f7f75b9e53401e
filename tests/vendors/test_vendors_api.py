"""The vendors API as every role, and the isolation of one vendor's annotators from another's."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.projects.capabilities import Cap
from apps.vendors import services
from apps.vendors.models import VendorLabel
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected
from tests.vendors.conftest import make_batch
from tests.vendors.test_vendors import label_studio_export

STAFF = [
    ("get", "/api/projects/{p}/vendors/", None, Cap.VIEW, 200),
    ("post", "/api/projects/{p}/vendors/", {"name": "New Co", "price_per_item": "0.1", "currency": "USD", "turnaround_days": 3}, Cap.MANAGE_VENDORS, 201),
    ("get", "/api/datasets/{d}/batches/", None, Cap.VIEW, 200),
    ("post", "/api/datasets/{d}/batches/", {"vendor": "{v}", "title": "t", "q": {"field": "label", "op": "=", "value": "dog"}}, Cap.MANAGE_VENDORS, 201),
    ("get", "/api/batches/{b}/", None, Cap.VIEW, 200),
    ("post", "/api/batches/{b}/action/", {"action": "send"}, Cap.MANAGE_VENDORS, 200),
    ("get", "/api/batches/{b}/export/?format=label-studio", None, Cap.MANAGE_VENDORS, 200),
]  # fmt: skip


def fill(value, ids):
    if (
        isinstance(value, str)
        and value.startswith("{")
        and value.endswith("}")
        and value[1:-1] in ids
    ):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method,template,body,cap,ok", STAFF)
def test_staff_endpoints_as_every_role(
    persona, method, template, body, cap, ok, world, team, vendor, api_as
):
    dataset, _run, _rows = world
    batch = make_batch(world, team, vendor)
    ids = {"p": team.project.pk, "d": dataset.pk, "b": batch.pk, "v": vendor.pk}
    response = getattr(api_as(team.user(persona)), method)(
        template.format(**ids), fill(body, ids), format="json"
    )
    assert response.status_code == expected(persona, cap, ok), response.content[:300]


def test_annotators_reach_their_own_work_only(world, team, two_vendors, api_as):
    mine, theirs, rival = two_vendors
    client = api_as(team.user("vendor"))
    listed = client.get(f"/api/projects/{team.project.pk}/work/").json()
    assert [b["id"] for b in listed] == [mine.pk]
    items = client.get(f"/api/work/{mine.pk}/items/").json()
    assert (
        len(items) == mine.items.count()
        and "gold_label" not in items[0]
        and "label" not in items[0]
    )
    assert client.get(f"/api/work/{theirs.pk}/items/").status_code == 404
    their_item = theirs.items.first()
    assert (
        client.post(
            f"/api/work/{mine.pk}/items/", {"item": their_item.pk, "label": "dog"}, format="json"
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/api/work/{theirs.pk}/items/", {"item": their_item.pk, "label": "dog"}, format="json"
        ).status_code
        == 404
    )
    ok = client.post(
        f"/api/work/{mine.pk}/items/",
        {"item": mine.items.first().pk, "label": "dog"},
        format="json",
    )
    assert ok.status_code == 200
    for path in (
        f"/api/batches/{mine.pk}/",
        f"/api/batches/{mine.pk}/export/",
        f"/api/datasets/{mine.dataset_id}/batches/",
    ):
        assert client.get(path).status_code == 404, path
    assert not VendorLabel.objects.filter(item=their_item).exists()


def test_import_through_the_api_is_all_or_nothing(world, team, vendor, api_as):
    batch = services.batch_send(
        batch=make_batch(world, team, vendor, gold_share=0), by=team.user("manager")
    )
    client = api_as(team.user("manager"))
    text = label_studio_export(batch, lambda t: "bird")
    broken = text.replace('"bird"', '"zebra"', 1)
    refused = client.post(
        f"/api/batches/{batch.pk}/import/",
        {"file": SimpleUploadedFile("export.json", broken.encode())},
        format="multipart",
    )
    assert refused.status_code == 400 and "not a label" in str(refused.json()["problems"])
    assert not VendorLabel.objects.exists()
    done = client.post(
        f"/api/batches/{batch.pk}/import/",
        {"file": SimpleUploadedFile("export.json", text.encode())},
        format="multipart",
    )
    assert done.status_code == 200 and done.json()["imported"] == batch.items.count()
