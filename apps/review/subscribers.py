"""The activity feed and notifications, reacting to the events the other apps record."""

from __future__ import annotations

from apps.core.events import Event
from apps.review.services import activity_add, notify


def feed_and_notify(event: Event) -> dict | None:
    """The event's activity line, and its notice to the people it names (e-mailed after
    commit), written in the recording transaction."""
    if event.activity:
        activity_add(project=event.project, actor=event.actor, verb=event.activity, url=event.url)
    if event.notice is None:
        return None
    notice = event.notice
    notified = notify(
        users=notice.users,
        project=event.project,
        kind=notice.kind,
        text=notice.text,
        url=notice.url,
        site_url=notice.site_url,
    )
    return {"notified": notified}
