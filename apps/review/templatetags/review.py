"""Template filters of the collaboration pages."""

from django import template

from apps.review.markdown import render

register = template.Library()


@register.filter
def markdown(text: str):
    """Markdown rendered and sanitised (see apps.review.markdown)."""
    return render(text)
