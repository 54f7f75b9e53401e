"""Sending a batch: refused when the vendor has too few annotators in the project to give each
item its labels; the e-mails of sending and of rework carry absolute links to the batch."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import override_settings

from apps.projects.capabilities import Role
from apps.vendors import services
from apps.vendors.models import Batch
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.vendors.conftest import make_batch

TOO_FEW = "needs 2 annotators; Acme Labels has 1 in this project"


def test_a_batch_needing_more_annotators_than_the_vendor_has_is_refused(
    world, team, vendor, api_as, web_as
):
    # An annotator of the vendor who works only in another project does not count here.
    elsewhere = ProjectFactory(name="Elsewhere", slug="elsewhere")
    services.vendor_link(vendor=vendor, project=elsewhere, by=_manager_of(team, elsewhere))
    away = UserFactory(username="away")
    MembershipFactory(project=elsewhere, user=away, role=Role.VENDOR)
    services.vendor_member_add(vendor=vendor, project=elsewhere, user=away)
    batch = make_batch(world, team, vendor, labels_per_item=2)
    with pytest.raises(ValidationError, match=TOO_FEW):
        services.batch_send(batch=batch, by=team.user("manager"))
    response = api_as(team.user("manager")).post(
        f"/api/batches/{batch.pk}/action/", {"action": "send"}, format="json"
    )
    assert response.status_code == 400 and TOO_FEW in response.content.decode()
    web = web_as(team.user("manager"))
    page = web.post(f"/vendors/batches/{batch.pk}/send/", follow=True).content.decode()
    assert TOO_FEW in page
    batch.refresh_from_db()
    assert batch.status == Batch.Status.DRAFT and batch.sent_at is None
    # The batch says what it needs, on its page and in the API.
    assert api_as(team.user("viewer")).get(f"/api/batches/{batch.pk}/").json()["annotators"] == {
        "needed": 2,
        "available": 1,
    }
    page = web.get(f"/vendors/batches/{batch.pk}/").content.decode()
    assert "Needs 2 annotators" in re.sub(r"\s+", " ", page)
    # A second annotator in the project, and the batch goes.
    second = UserFactory(username="second")
    MembershipFactory(project=team.project, user=second, role=Role.VENDOR)
    services.vendor_member_add(vendor=vendor, project=team.project, user=second)
    assert services.batch_send(batch=batch, by=team.user("manager")).status == Batch.Status.SENT


def _manager_of(team, project):
    MembershipFactory(project=project, user=team.user("manager"), role=Role.MANAGER)
    return team.user("manager")


def _links(body: str) -> list[str]:
    return re.findall(r"https?://\S+", body)


@override_settings(LOUPE_SITE_URL="")
@pytest.mark.parametrize("via", ["api", "page"])
def test_send_and_rework_mails_link_to_the_batch_absolutely(
    world, team, vendor, api_as, web_as, via, django_capture_on_commit_callbacks
):
    batch = make_batch(world, team, vendor)
    manager, reviewer, annotator = team.user("manager"), team.user("reviewer"), team.user("vendor")

    def act(user, action, **extra):
        with django_capture_on_commit_callbacks(execute=True):
            if via == "api":
                response = api_as(user).post(
                    f"/api/batches/{batch.pk}/action/", {"action": action, **extra}, format="json"
                )
                assert response.status_code == 200, response.content
            else:
                response = web_as(user).post(f"/vendors/batches/{batch.pk}/{action}/", extra)
                assert response.status_code == 302

    mail.outbox.clear()
    act(manager, "send")
    sent = [m for m in mail.outbox if annotator.email in m.to]
    assert len(sent) == 1 and _links(sent[0].body) == [
        f"http://testserver/vendors/work/{batch.pk}/"
    ]
    for item in Batch.objects.get(pk=batch.pk).items.all():
        services.label_set(item=item, annotator=annotator, label="dog")
    services.batch_submit(batch=batch, by=annotator)
    act(reviewer, "qa")
    services.item_review(item=batch.items.first(), by=reviewer, accept=False, note="a bird")
    mail.outbox.clear()
    act(reviewer, "return", notes="see the notes")
    returned = [m for m in mail.outbox if annotator.email in m.to]
    assert len(returned) == 1 and "came back for rework" in returned[0].body
    assert _links(returned[0].body) == [f"http://testserver/vendors/work/{batch.pk}/"]
