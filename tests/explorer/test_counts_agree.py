"""A count and its noun agree in number: one sample, two samples."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string

from apps.explorer.actions.samples import Relabel, Remove, Tag, Untag
from apps.review.models import ConsensusPolicy


@pytest.mark.parametrize(
    ("action", "settings", "one", "many"),
    [
        (Tag(), {"tag": "odd"}, "Tagged 1 sample “odd”.", "Tagged 1,200 samples “odd”."),
        (
            Untag(),
            {"tag": "odd"},
            "Took the tag “odd” off 1 sample.",
            "Took the tag “odd” off 1,200 samples.",
        ),
        (Relabel(), {}, "1 relabel added to the draft.", "1,200 relabels added to the draft."),
        (Remove(), {}, "1 removal added to the draft.", "1,200 removals added to the draft."),
    ],
)
def test_bulk_action_message_agrees_with_its_count(action, settings, one, many):
    assert action.done(1, settings) == one
    assert action.done(1200, settings) == many


def test_consensus_policy_says_one_vote():
    assert str(ConsensusPolicy(min_votes=1, agreement=1)) == "1 vote, 100% agreement"
    assert str(ConsensusPolicy(min_votes=3, agreement=0.5)) == "3 votes, 50% agreement"


def test_assigned_batches_say_one_item():
    class Batch:
        pk = 1
        title = "b"
        open_count = 1
        item_count = 1
        due_date = None

        def get_status_display(self):
            return "Sent"

    page = render_to_string("vendors/panels/assigned_batches.html", {"batches": [Batch()]})
    assert "1 of 1 item to do" in page
    Batch.item_count = 2
    page = render_to_string("vendors/panels/assigned_batches.html", {"batches": [Batch()]})
    assert "1 of 2 items to do" in page
