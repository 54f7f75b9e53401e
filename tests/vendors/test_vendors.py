"""Vendors: a batch through its lifecycle to a new version and booked costs, gold accuracy,
vendor isolation on every page, the Label Studio and CSV exchange (all or nothing)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.datasets.models import LabelEvent, Sample
from apps.projects.capabilities import Cap, Role
from apps.vendors import exchange, services
from apps.vendors.models import Batch, BatchItem, CostEntry, VendorLabel
from tests.conftest import PERSONAS
from tests.factories import MembershipFactory, UserFactory
from tests.projects.test_access_matrix import expected
from tests.vendors.conftest import make_batch


def test_a_batch_mixes_in_gold_items_with_known_answers(world, team, vendor):
    batch = make_batch(world, team, vendor)
    dataset, run, rows = world
    gold = list(batch.items.exclude(gold_label=None).select_related("sample"))
    work = batch.items.filter(gold_label=None)
    assert work.count() == sum(
        1
        for r in rows
        if r["label"] == "cat" and r["score"] and r["score"]["mislabel_score"] is not None
    )
    assert len(gold) == round(work.count() * 0.2 / 0.8)
    chosen = set(work.values_list("sample_id", flat=True))
    for item in gold:
        # A gold item is a labelled sample outside the selection, its label the answer.
        assert item.sample.label == item.gold_label and item.sample_id not in chosen
        assert not item.sample.scores.filter(run=run, likely_mislabeled=True).exists()
    assert batch.price_per_item == Decimal("0.05") and batch.currency == "EUR"
    with pytest.raises(ValidationError, match="1 to 5"):
        make_batch(world, team, vendor, labels_per_item=6)


def test_an_annotator_belongs_to_one_vendor_and_holds_the_vendor_role(world, team, vendor):
    other = services.vendor_create(project=team.project, name="Other Co")
    with pytest.raises(ValidationError, match="already works for Acme"):
        services.vendor_member_add(vendor=other, project=team.project, user=team.user("vendor"))
    with pytest.raises(ValidationError, match="vendor role"):
        services.vendor_member_add(vendor=other, project=team.project, user=team.user("reviewer"))


def test_round_trip_with_rework_to_a_version_and_costs(world, team, vendor):
    batch = make_batch(world, team, vendor)
    annotator = team.user("vendor")
    with pytest.raises(ValidationError, match="not open"):
        services.label_set(item=batch.items.first(), annotator=annotator, label="dog")
    batch = services.batch_send(batch=batch, by=team.user("manager"))
    items = list(batch.items.select_related("sample"))
    for item in items:
        # The vendor calls every work item a dog, and gets gold right except one.
        label = item.gold_label if item.is_gold else "dog"
        services.label_set(item=item, annotator=annotator, label=label)
    wrong_gold = next(i for i in items if i.is_gold)
    wrong = next(label for label in ("cat", "dog", "bird") if label != wrong_gold.gold_label)
    services.label_set(item=wrong_gold, annotator=annotator, label=wrong)
    batch = services.batch_submit(batch=batch, by=annotator)
    batch = services.qa_start(batch=batch, by=team.user("reviewer"))
    returned = next(i for i in items if not i.is_gold)
    services.item_review(
        item=returned, by=team.user("reviewer"), accept=False, note="this one is a bird"
    )
    with pytest.raises(ValidationError, match="returned"):
        services.batch_accept(batch=batch, by=team.user("reviewer"))
    batch = services.batch_return(batch=batch, by=team.user("reviewer"), notes="see the notes")
    other = next(i for i in items if not i.is_gold and i.pk != returned.pk)
    with pytest.raises(ValidationError, match="returned items"):
        services.label_set(
            item=BatchItem.objects.get(pk=other.pk), annotator=annotator, label="bird"
        )
    services.label_set(
        item=BatchItem.objects.get(pk=returned.pk), annotator=annotator, label="bird"
    )
    batch = services.batch_submit(batch=batch, by=annotator)
    batch = services.qa_start(batch=batch, by=team.user("reviewer"))
    batch = services.batch_accept(
        batch=batch, by=team.user("reviewer"), override_reason="one gold item wrong, fine"
    )
    assert batch.status == Batch.Status.ACCEPTED and batch.version is not None
    work = [i for i in items if not i.is_gold]
    labels = dict(
        Sample.objects.filter(pk__in=[i.sample_id for i in work]).values_list("pk", "label")
    )
    assert labels == {i.sample_id: ("bird" if i.pk == returned.pk else "dog") for i in work}
    events = LabelEvent.objects.filter(
        version=batch.version, sample_id__in=[i.sample_id for i in work]
    )
    assert events.count() == len(work) and set(events.values_list("source", flat=True)) == {
        "vendor"
    }
    costs = CostEntry.objects.filter(vendor=vendor)
    assert costs.count() == len(items)
    assert sum(c.amount for c in costs) == Decimal("0.05") * len(items)
    stats = services.batch_stats(batch)
    gold_total = sum(1 for i in items if i.is_gold)
    assert stats["gold_by_annotator"]["vendor1"] == {
        "right": gold_total - 1,
        "total": gold_total,
        "accuracy": (gold_total - 1) / gold_total,
    }


def test_agreement_and_majority_with_several_labels_per_item(world, team, vendor):
    second = UserFactory(username="annotator2")
    MembershipFactory(project=team.project, user=second, role=Role.VENDOR)
    services.vendor_member_add(vendor=vendor, project=team.project, user=second)
    batch = services.batch_send(
        batch=make_batch(world, team, vendor, labels_per_item=2, gold_share=0),
        by=team.user("manager"),
    )
    items = list(batch.items.all())
    for n, item in enumerate(items):
        services.label_set(item=item, annotator=team.user("vendor"), label="dog")
        services.label_set(item=item, annotator=second, label="dog" if n % 2 == 0 else "bird")
    assert services.batch_stats(batch)["agreement"] == pytest.approx(
        sum(1 for n in range(len(items)) if n % 2 == 0) / len(items)
    )
    assert services.final_label(items[1].labels.all()) is None  # a tie decides nothing


# --- Isolation ------------------------------------------------------------------------------------


def test_a_vendor_sees_only_its_own_batches_and_items(world, team, two_vendors, web_as):
    mine, theirs, _rival = two_vendors
    client = web_as(team.user("vendor"))
    assert client.get(f"/vendors/work/{mine.pk}/").status_code == 200
    item = theirs.items.first()
    for path in (
        f"/vendors/work/{theirs.pk}/",
        f"/vendors/batches/{mine.pk}/",
        f"/vendors/batches/{theirs.pk}/",
        f"/vendors/batches/{mine.pk}/export?format=label-studio",
        f"/vendors/batches/{mine.pk}/export?format=csv",
        f"/vendors/projects/{team.project.slug}/",
        f"/datasets/{mine.dataset_id}/samples/",
        f"/datasets/{mine.dataset_id}/samples/{item.sample_id}/",
        f"/api/datasets/{mine.dataset_id}/samples/",
    ):
        assert client.get(path).status_code == 404, path
    # Posting a label to another vendor's item, or to an item of another batch, is a 404.
    assert (
        client.post(f"/vendors/work/{theirs.pk}/", {"item": item.pk, "label": "dog"}).status_code
        == 404
    )
    assert (
        client.post(f"/vendors/work/{mine.pk}/", {"item": item.pk, "label": "dog"}).status_code
        == 404
    )
    assert not VendorLabel.objects.filter(item=item).exists()
    # The workspace shows the item's content and nothing of scores, suggestions or comments.
    page = client.get(f"/vendors/work/{mine.pk}/?i=0").content.decode()
    assert (
        "mislabel" not in page.lower() and "suggest" not in page.lower() and "Comments" not in page
    )


def test_a_draft_batch_is_not_the_vendors_yet(world, team, vendor, web_as):
    draft = make_batch(world, team, vendor)
    assert web_as(team.user("vendor")).get(f"/vendors/work/{draft.pk}/").status_code == 404


def test_vendor_media_only_for_assigned_items(world, team, vendor, web_as, tmp_path):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from apps.datasets.selectors import media_path

    dataset, _run, _rows = world
    batch = services.batch_send(
        batch=make_batch(world, team, vendor, gold_share=0), by=team.user("manager")
    )
    inside = batch.items.first().sample
    outside = (
        Sample.objects.filter(dataset=dataset)
        .exclude(pk__in=batch.items.values("sample_id"))
        .first()
    )
    for sample, name in ((inside, "in.png"), (outside, "out.png")):
        Sample.objects.filter(pk=sample.pk).update(image=name)
        default_storage.save(media_path(dataset, name), ContentFile(b"\x89PNG fake"))
    client = web_as(team.user("vendor"))
    assert client.get(f"/datasets/{dataset.pk}/media/in.png").status_code == 200
    assert client.get(f"/datasets/{dataset.pk}/media/out.png").status_code == 404


STAFF = [
    ("get", "/vendors/projects/{p}/", {}, Cap.VIEW, 200),
    ("get", "/vendors/batches/{b}/", {}, Cap.VIEW, 200),
    ("get", "/vendors/batches/{b}/export?format=label-studio", {}, Cap.MANAGE_VENDORS, 200),
    ("post", "/vendors/batches/{b}/send/", {}, Cap.MANAGE_VENDORS, 302),
    ("post", "/vendors/batches/{b}/qa/", {}, Cap.QA, 302),
    ("post", "/vendors/projects/{p}/", {"name": "New Co", "currency": "USD"}, Cap.MANAGE_VENDORS, 302),
    ("post", "/vendors/datasets/{d}/batches/new/", {"vendor": "{v}", "batch_title": "t", "all": "1", "q": '{"field": "label", "op": "=", "value": "dog"}'}, Cap.MANAGE_VENDORS, 302),
]  # fmt: skip


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method,template,body,cap,ok", STAFF)
def test_staff_pages_as_every_role(
    persona, method, template, body, cap, ok, world, team, vendor, web_as
):
    dataset, _run, _rows = world
    batch = make_batch(world, team, vendor)
    ids = {"p": team.project.slug, "b": batch.pk, "d": dataset.pk, "v": vendor.pk}
    response = getattr(web_as(team.user(persona)), method)(
        template.format(**ids),
        {k: v.format(**ids) if "{" in v and "field" not in v else v for k, v in body.items()},
    )
    assert response.status_code == expected(persona, cap, ok), response.content[:200]


# --- Exchange -------------------------------------------------------------------------------------


def label_studio_export(batch, label_for) -> str:
    """A file in Label Studio's JSON export format: tasks with their data and annotations."""
    tasks = []
    for n, task in enumerate(exchange.label_studio_tasks(batch)):
        tasks.append(
            {
                "id": 1000 + n,
                "data": task["data"],
                "annotations": [
                    {
                        "id": 5000 + n,
                        "completed_by": {"id": 7, "email": "ann@vendor.example"},
                        "was_cancelled": False,
                        "result": [
                            {
                                "id": f"r{n}",
                                "from_name": "label",
                                "to_name": "content",
                                "type": "choices",
                                "origin": "manual",
                                "value": {"choices": [label_for(task)]},
                            }
                        ],
                        "created_at": "2026-12-01T10:00:00.000000Z",
                    }
                ],
                "predictions": [],
            }
        )
    return json.dumps(tasks)


def test_label_studio_round_trip(world, team, vendor):
    batch = services.batch_send(
        batch=make_batch(world, team, vendor, gold_share=0), by=team.user("manager")
    )
    tasks = exchange.label_studio_tasks(batch, predictions=True)
    first = tasks[0]
    assert set(first["data"]) >= {"loupe_item", "loupe_sample", "text"}
    result = first["predictions"][0]["result"][0]
    assert result["type"] == "choices" and result["value"]["choices"] == ["cat"]
    assert "predictions" not in exchange.label_studio_tasks(batch)[0]
    assert '<Choice value="bird"/>' in exchange.label_config(batch)
    rows = exchange.parse_label_studio(batch, label_studio_export(batch, lambda t: "bird"))
    assert exchange.import_labels(
        batch=batch, by=team.user("manager"), rows=rows, source="label-studio"
    ) == len(tasks)
    assert set(
        VendorLabel.objects.filter(item__batch=batch).values_list("label", "external_annotator")
    ) == {("bird", "ann@vendor.example")}
    assert not batch.items.exclude(status=BatchItem.Status.DONE).exists()


@pytest.mark.parametrize(
    "mangle, words",
    [
        (lambda text: text[:-5], "not JSON"),
        (lambda text: json.dumps({"tasks": json.loads(text)}), "list of tasks"),
        (
            lambda text: json.dumps(
                [*json.loads(text), {"data": {"loupe_item": 999999}, "annotations": []}]
            ),
            "no item 999999",
        ),
        (lambda text: text.replace('"bird"', '"zebra"', 1), "not a label"),
        (lambda text: "[" * 50_000 + "]" * 50_000, "deeper than"),
        (lambda text: text.replace("ann@vendor.example", "ann\\u0000@vendor.example", 1), "NUL"),
        (
            lambda text: text.replace("ann@vendor.example", "ann\\ud800@vendor.example", 1),
            "surrogate",
        ),
        (
            lambda text: json.dumps(
                [{**t, "annotations": []} if i == 1 else t for i, t in enumerate(json.loads(text))]
            ),
            "no annotation",
        ),
    ],
)
def test_a_malformed_or_partial_import_changes_nothing(world, team, vendor, mangle, words):
    batch = services.batch_send(
        batch=make_batch(world, team, vendor, gold_share=0), by=team.user("manager")
    )
    text = mangle(label_studio_export(batch, lambda t: "bird"))
    with pytest.raises(exchange.Refused) as refused:
        exchange.parse_label_studio(batch, text)
    assert any(words in p["message"] for p in refused.value.problems), refused.value.problems
    assert not VendorLabel.objects.exists()


def test_csv_import_through_the_page_reports_what_did_not_match(world, team, vendor, web_as):
    from django.core.files.uploadedfile import SimpleUploadedFile

    batch = services.batch_send(
        batch=make_batch(world, team, vendor, gold_share=0), by=team.user("manager")
    )
    items = list(batch.items.select_related("sample"))
    good = "item_id,label\n" + "".join(f"{i.pk},dog\n" for i in items)
    bad = good + "999999,dog\n" + f"{items[0].pk},zebra\n"
    client = web_as(team.user("manager"))
    page = client.post(
        f"/vendors/batches/{batch.pk}/import",
        {"file": SimpleUploadedFile("labels.csv", bad.encode())},
        follow=True,
    ).content.decode()
    assert "Nothing imported" in page and "no item &#x27;999999&#x27;" in page and "row" in page
    assert not VendorLabel.objects.exists()
    page = client.post(
        f"/vendors/batches/{batch.pk}/import",
        {"file": SimpleUploadedFile("labels.csv", good.encode())},
        follow=True,
    ).content.decode()
    assert f"{len(items)} labels imported" in page
    assert VendorLabel.objects.filter(item__batch=batch, label="dog").count() == len(items)


def test_qa_can_check_a_random_sample_of_the_labelled_items(world, team, vendor, web_as):
    batch = services.batch_send(
        batch=make_batch(world, team, vendor, gold_share=0), by=team.user("manager")
    )
    for item in batch.items.all():
        services.label_set(item=item, annotator=team.user("vendor"), label="dog")
    services.batch_submit(batch=batch, by=team.user("vendor"))
    picked = services.qa_sample(batch, 5)
    assert len(picked) == 5 and picked == services.qa_sample(batch, 5)
    page = (
        web_as(team.user("reviewer")).get(f"/vendors/batches/{batch.pk}/?sample=5").content.decode()
    )
    assert page.count('data-item="') == 5 and "a QA sample" in page


def test_the_vendors_page_shows_each_vendors_gold_accuracy(world, team, vendor, web_as):
    batch = services.batch_send(batch=make_batch(world, team, vendor), by=team.user("manager"))
    gold = [i for i in batch.items.all() if i.is_gold]
    labels = world[0].labels
    for n, item in enumerate(gold):
        # The first gold item gets a wrong answer, whatever its right one is.
        wrong = next(label for label in labels if label != item.gold_label)
        services.label_set(
            item=item, annotator=team.user("vendor"), label=item.gold_label if n else wrong
        )
    page = (
        web_as(team.user("manager")).get(f"/vendors/projects/{team.project.slug}/").content.decode()
    )
    right = len(gold) - 1
    assert f"({right} of {len(gold)})" in page


def test_a_label_for_an_item_that_is_not_a_number_is_a_404(world, team, vendor, web_as):
    batch = services.batch_send(batch=make_batch(world, team, vendor), by=team.user("manager"))
    response = web_as(team.user("vendor")).post(
        f"/vendors/work/{batch.pk}/", {"item": "x", "label": "dog"}
    )
    assert response.status_code == 404 and not VendorLabel.objects.exists()


def test_adding_an_annotator_tells_nothing_about_accounts_outside_the_project(
    world, team, vendor, web_as
):
    """A manager learns the same from an account outside the project as from no account."""
    client = web_as(team.user("manager"))
    answers = []
    for username in ("outsider", "no-such-person"):
        response = client.post(
            "/vendors/projects/cats-dogs/",
            {"action": "member", "vendor": vendor.pk, "username": username},
            follow=True,
        )
        text = response.content.decode().replace(username, "NAME")
        answers.append(re.findall(r'class="flash [^"]*" role="status">(.*?)<', text, re.S))
    assert answers[0] == answers[1] == ["Pick a vendor and a user of the project."]


def test_an_annotator_of_another_projects_vendor_is_refused_without_naming_that_vendor(
    world, team, vendor
):
    from tests.factories import MembershipFactory, UserFactory

    annotator = UserFactory(username="moonlighter")
    MembershipFactory(project=team.other_project, user=annotator, role="vendor")
    MembershipFactory(project=team.project, user=annotator, role="vendor")
    secret = services.vendor_create(project=team.other_project, name="Secret Co")
    services.vendor_member_add(vendor=secret, project=team.other_project, user=annotator)
    with pytest.raises(ValidationError) as refused:
        services.vendor_member_add(vendor=vendor, project=team.project, user=annotator)
    assert "Secret Co" not in str(refused.value)
    assert "a vendor of another project" in str(refused.value)


@pytest.mark.parametrize("column", ["skip_reason", "annotator"])
def test_a_csv_import_with_text_the_database_cannot_hold_is_refused_by_row(
    world, team, vendor, column
):
    batch = services.batch_send(
        batch=make_batch(world, team, vendor, gold_share=0), by=team.user("manager")
    )
    item = batch.items.first()
    cells = {"skip_reason": "unsure", "annotator": "ann", column: "un\x00sure"}
    text = f"item_id,label,skip_reason,annotator\n{item.pk},,{cells['skip_reason']},{cells['annotator']}\n"
    with pytest.raises(exchange.Refused) as refused:
        exchange.parse_csv(batch, text)
    assert refused.value.problems == [
        {"where": f"row 2, column {column}", "message": f"the {column} contains a NUL character"}
    ]
    assert not VendorLabel.objects.exists()
