"""Review's parts of the explorer's pages: comments and decisions on the sample page; on the
table, starting a session with the selection and the discussion of a cluster."""

from __future__ import annotations

from apps.core.panels import panel_register
from apps.review import selectors


def sample_context(request, context: dict) -> dict:
    sample, dataset = context["sample"], context["dataset"]
    history = context["history"]
    decisions = selectors.decisions_for_events([e.pk for e in history])
    for event in history:
        event.review_decision = decisions.get(event.pk)
    return {
        "comments": selectors.thread(sample=sample),
        "comment_target": {"dataset": dataset.pk, "sample": sample.pk},
    }


def table_context(request, context: dict) -> dict:
    dataset, found = context["dataset"], context["exploration"]
    # A table of one cluster (the health page's links) carries the cluster's discussion.
    cluster = None
    if (
        isinstance(found.query, dict)
        and found.query.get("field") == "cluster"
        and found.query.get("op") == "="
        and found.run is not None
        and isinstance(found.query.get("value"), int)
    ):
        cluster = {
            "number": found.query["value"],
            "comments": selectors.thread(run=found.run, cluster=found.query["value"]),
            "target": {"dataset": dataset.pk, "run": found.run.pk, "cluster": found.query["value"]},
        }
    return {
        "cluster": cluster,
        "default_participants": " ".join(
            m.user.username
            for m in dataset.project.memberships.select_related("user").filter(
                role__in=["reviewer", "scientist"]
            )
        ),
    }


def register() -> None:
    panel_register("sample.history_event", template="review/panels/decision.html")
    panel_register("sample.aside", template="review/comments.html", context=sample_context)
    panel_register(
        "samples.curate", template="review/panels/session_start.html", context=table_context
    )
    panel_register("samples.end", template="review/panels/cluster_thread.html")
