"""Rules as code through the Python client, against a live server."""

from __future__ import annotations

import pytest
from loupe_client import LoupeError

from apps.datasets.models import SampleTag
from tests.client.test_client import key, live_url, loupe  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)

CATS = {"field": "label", "op": "=", "value": "cat"}


def test_list_create_dry_run_enable_run_and_disable_rules(world, team, loupe):  # noqa: F811
    dataset, _run, _rows = world
    rule = loupe.rules.create(
        dataset=dataset.pk, name="cats", query=CATS, action={"type": "tag", "tag": "cat?"}
    )
    assert rule["enabled"] is False and rule["action"] == {"type": "tag", "tag": "cat?"}
    assert [r["name"] for r in loupe.rules.list(dataset.pk)] == ["cats"]
    with pytest.raises(LoupeError, match="Dry-run"):
        loupe.rules.enable(rule)
    dry = loupe.rules.dry_run(rule)
    cats = set(dataset.samples.filter(label="cat").values_list("pk", flat=True))
    assert dry["would_act_on"] == len(cats) and set(dry["sample_ids"]) == cats
    assert loupe.rules.enable(rule)["enabled"] is True
    assert loupe.rules.disable(rule)["enabled"] is False
    with pytest.raises(LoupeError) as refused:
        loupe.rules.create(
            dataset=dataset.pk,
            name="bad",
            query={"field": "nope"},
            action={"type": "tag", "tag": "t"},
        )
    assert refused.value.status == 400 and "query" in str(refused.value)
    assert loupe.rules.runs(rule) == []
    assert not SampleTag.objects.filter(tag__name="cat?").exists()
    loupe.rules.delete(rule)
    assert loupe.rules.list(dataset.pk) == []
