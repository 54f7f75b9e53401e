"""The unread notification count every page's header shows."""

from apps.review.selectors import unread_count


def notifications(request) -> dict:
    return {"unread_notifications": unread_count(getattr(request, "user", None))}
